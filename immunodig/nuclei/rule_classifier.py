"""Cell classification by a documented morphology rule (no trained weights)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.vocab import CELL_CLASSES


@dataclass(frozen=True)
class RuleCellClassifier:
    """Morphology rule, usable without any trained model.

    A nucleus is a ``lymphocyte`` when it is small (``area_um2`` in [12, 50]: lymphocyte nuclei are
    ~4-8 µm across — Ross & Pawlina, *Histology*, 8th ed., ch. 10; ~7 µm mean in H&E, Cui et al.,
    Med Image Anal 2019), round (``circularity`` >= 0.80, ``eccentricity`` <= 0.75) and densely
    stained (``h_od_mean`` >= the ``dark_quantile`` quantile of the nuclei classified together —
    one image, or one ~0.2 mm² block of a slide — condensed chromatin). ``fibroblast``: elongated
    (``eccentricity`` >= 0.90; spindle nuclei, aspect > 2.3).
    ``epithelial``: large (``area_um2`` > 40; tumour nuclei are enlarged and vesicular). Otherwise
    ``other``. Probability reported is 1.0 (a rule has no calibrated probability; use the trained
    classifier for that).
    """

    lym_area_um2: tuple[float, float] = (12.0, 50.0)
    lym_min_circularity: float = 0.80
    lym_max_eccentricity: float = 0.75
    dark_quantile: float = 0.5
    fib_min_eccentricity: float = 0.90
    epi_min_area_um2: float = 40.0

    def classify(self, morph: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Return (cell_class str array, cell_prob float array) for a table of nucleus measures."""
        area, circ, ecc, hod = (
            np.asarray(morph[k], dtype=float) for k in ("area_um2", "circularity", "eccentricity", "h_od_mean")
        )
        out = np.full(len(area), "other", dtype=object)
        if not len(area):
            return out.astype(str), np.zeros(0)
        dark = hod >= np.quantile(hod, self.dark_quantile)
        out[area > self.epi_min_area_um2] = "epithelial"
        out[ecc >= self.fib_min_eccentricity] = "fibroblast"
        lym = (
            (area >= self.lym_area_um2[0])
            & (area <= self.lym_area_um2[1])
            & (circ >= self.lym_min_circularity)
            & (ecc <= self.lym_max_eccentricity)
            & dark
        )
        out[lym] = "lymphocyte"
        return out.astype(str), np.ones(len(area))

    def classify_nuclei(self, rgb: np.ndarray, labels: np.ndarray, mpp: float,
                        ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Measure the instances 1..N of ``labels`` (or only ``ids``) and classify them by the rule."""
        from immunodig.nuclei.morphology import measure_nuclei, only_instances

        return self.classify(measure_nuclei(rgb, only_instances(labels, ids), mpp))

    @property
    def classes(self) -> tuple[str, ...]:
        """Cell classes this classifier outputs."""
        return tuple(CELL_CLASSES)

    #: A rule reads no model file.
    file_sha256 = None
