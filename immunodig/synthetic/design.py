"""How a generated cohort's slides are laid out: slides per patient, tumour size, TLS size.

The standard design draws realistic variety (1-3 H&E slides per patient, tumour beds of 0.2-0.28
of the slide side, lymphoid aggregates of 50-130 µm radius). The demo design is built for small
slides that still hold every feature family: one H&E slide per patient, a tumour bed large
enough for a tumour core inside the (demo-scaled) invasive margin, and lymphoid aggregates large
enough to cover whole 112 µm tiles (TLS candidates). Each design consumes the same random
draws, so the patients' latent morphology and outcomes do not depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CohortDesign:
    """Slide-layout knobs of a generated cohort.

    Attributes
    ----------
    max_he_slides : int
        Cap on the patient's 1-3 drawn H&E slides (1: one slide per patient).
    tumour_radius_frac : tuple of float
        Range of the tumour-bed radius, as a fraction of the slide side (uniform per slide).
    tls_radius_um : tuple of float
        Range of a lymphoid aggregate's radius, µm (uniform per aggregate).
    tls_rate_scale : float
        Multiplies the patient's lymphoid aggregates per mm² of tissue.
    """

    max_he_slides: int = 3
    tumour_radius_frac: tuple[float, float] = (0.2, 0.28)
    tls_radius_um: tuple[float, float] = (50.0, 130.0)
    tls_rate_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_he_slides <= 3:
            raise ValueError("max_he_slides must be 1, 2 or 3")
        lo, hi = self.tumour_radius_frac
        if not 0 < lo <= hi < 0.5:
            raise ValueError(f"tumour_radius_frac {self.tumour_radius_frac} outside (0, 0.5)")
        if not 0 < self.tls_radius_um[0] <= self.tls_radius_um[1]:
            raise ValueError(f"tls_radius_um {self.tls_radius_um} must be increasing and > 0")
        if self.tls_rate_scale < 0:
            raise ValueError("tls_rate_scale must be >= 0")


#: Realistic variety (the default of ``synth-cohort`` and the tests).
STANDARD_DESIGN = CohortDesign()
#: The demo's small slides (``demo``; ``synth-cohort --design demo``): one H&E section per
#: patient, a tumour bed of 0.38-0.42 of the side (about 0.48 mm radius on the demo's 1.2 mm
#: slides: a core beyond its ±100 µm margin), aggregates of 110-170 µm radius, four times as many.
DEMO_DESIGN = CohortDesign(max_he_slides=1, tumour_radius_frac=(0.38, 0.42),
                           tls_radius_um=(110.0, 170.0), tls_rate_scale=4.0)
#: Designs by name (``synth-cohort --design``).
DESIGNS: dict[str, CohortDesign] = {"standard": STANDARD_DESIGN, "demo": DEMO_DESIGN}
