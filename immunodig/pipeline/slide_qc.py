"""Per-slide quality-control measures and the plausibility flags derived from them.

Every slide's folder gets ``qc.json``: ``measures`` (numbers, below) and ``flags`` (the rules of
:data:`QC_RULES` that the measures break, each with a one-line reason). The store keeps both
(``slide_qc_measures``, ``slide_flags``; the ``slide_qc`` view), ``build-features`` and
``status`` show the flags and the report lists flagged slides. A flagged slide is kept and its
features are stored: the flag says it must be looked at before its numbers are trusted.

Measures
--------
``mpp`` (µm/px), ``mpp_from_override`` (1 when ``--mpp`` supplied it), ``tissue_area_mm2``,
``n_tiles``, ``n_tiles_qc_pass``, ``tiles_excluded_<reason>`` (``blur``, ``pen``,
``background``), ``fraction_tiles_excluded``, ``blur_median`` (variance of the Laplacian over
tissue tiles), ``n_tiles_tumour``, ``fraction_tiles_tumour`` (H&E); ``nuclei_per_mm2`` and
``nuclei_<class>_per_mm2`` per cell class over the classified tissue area, ``lymphocyte_fraction``
(when the nuclei stage ran); ``positive_cells_per_mm2``, ``registration_overlap_dice`` (IHC);
``stain_<h|e>_od_<r|g|b>`` (Macenko stain vectors of the tissue in the mask thumbnail, where
there is enough stained tissue to estimate them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from immunodig.errors import ConfigError
from immunodig.vocab import CELL_CLASSES

#: Plausibility rules: name -> default threshold. Override any with ``BuildConfig.qc_rules``.
QC_RULES: dict[str, float] = {
    # H&E with the nuclei stage: fewer nuclei per mm² of classified tissue than any cellular
    # tissue holds (cellular CRC tissue has thousands per mm²): a segmentation that failed.
    "nuclei_density_low": 500.0,
    # more nuclei per mm² than nuclei of 4 µm diameter can pack: over-segmentation.
    "nuclei_density_high": 40000.0,
    # a lymphocyte fraction above this among all nuclei: a classifier out of its domain.
    "lymphocyte_fraction_high": 0.8,
    # H&E slide without any tumour tile: tumour compartments (and their densities) undefined.
    "no_tumour": 0.0,
    # a larger fraction of the tissue tiles excluded by tile QC (blur, pen, background).
    "tiles_excluded_high": 0.5,
    # IHC registration onto the H&E slide: tissue-mask Dice overlap below this.
    "registration_poor": 0.7,
}
#: Flags raised without a threshold (recorded facts a reader must know).
FACT_FLAGS: tuple[str, ...] = ("mpp_from_override", "ihc_unregistered")


def qc_rules(overrides: dict[str, float] | None) -> dict[str, float]:
    """The rules in force: :data:`QC_RULES` updated by ``overrides`` (unknown names refused)."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(QC_RULES))
    if unknown:
        raise ConfigError(f"unknown QC rule(s) {unknown}; known: {sorted(QC_RULES)}")
    return {**QC_RULES, **{k: float(v) for k, v in overrides.items()}}


def tile_measures(tiles: pl.DataFrame, tile_area_mm2: float, stain: str) -> dict[str, float]:
    """Tile counts, exclusions by reason, blur and (H&E) tumour tiles."""
    n = tiles.height
    passed = tiles["qc_pass"].fill_null(False)
    out: dict[str, float] = {"n_tiles": float(n), "n_tiles_qc_pass": float(passed.sum())}
    reasons = tiles["qc_reason"].fill_null("") if "qc_reason" in tiles.columns else None
    for reason in ("blur", "pen", "background"):
        out[f"tiles_excluded_{reason}"] = float((reasons == reason).sum()) if reasons is not None \
            else 0.0
    out["fraction_tiles_excluded"] = float((~passed).sum()) / n if n else math.nan
    blur = tiles["qc_blur"].drop_nulls() if "qc_blur" in tiles.columns else pl.Series([])
    out["blur_median"] = float(blur.median()) if blur.len() else math.nan
    if stain == "HE" and "pred_class" in tiles.columns:
        tum = float((tiles["pred_class"] == "TUM").sum())
        classified = float(tiles["pred_class"].is_not_null().sum())
        out["n_tiles_tumour"] = tum
        out["fraction_tiles_tumour"] = tum / classified if classified else math.nan
        frac = tiles.filter(pl.col("pred_class").is_not_null())["tissue_fraction"]
        out["classified_tissue_mm2"] = float(frac.fill_null(0).sum()) * tile_area_mm2
    return out


def nuclei_measures(nuclei: pl.DataFrame, classified_tissue_mm2: float) -> dict[str, float]:
    """Nuclei per mm² of classified tissue, per cell class, and the lymphocyte fraction."""
    area = classified_tissue_mm2
    n = nuclei.height
    out = {"nuclei_per_mm2": n / area if area > 0 else math.nan}
    counts = dict(nuclei.group_by("cell_class").len().iter_rows()) if n else {}
    for cls in CELL_CLASSES:
        out[f"nuclei_{cls}_per_mm2"] = counts.get(cls, 0) / area if area > 0 else math.nan
    out["lymphocyte_fraction"] = counts.get("lymphocyte", 0) / n if n else math.nan
    return out


def stain_measures(thumbnail: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Macenko stain vectors (unit OD vectors, rows H and E) of the tissue pixels, or none."""
    from immunodig.slides.stain_norm import estimate_stains

    h = min(thumbnail.shape[0], mask.shape[0])
    w = min(thumbnail.shape[1], mask.shape[1])
    tissue = thumbnail[:h, :w][mask[:h, :w]]
    try:
        stains, _ = estimate_stains(tissue.reshape(-1, 1, 3))
    except ValueError:  # too little stained tissue
        return {}
    return {f"stain_{s}_od_{c}": float(stains[i, j]) for i, s in enumerate("he")
            for j, c in enumerate("rgb")}


def plausibility_flags(measures: dict[str, float], stain: str,
                       rules: dict[str, float]) -> dict[str, str]:
    """Flags the measures raise under ``rules``: flag name -> reason (one line)."""
    m = measures
    flags: dict[str, str] = {}

    def finite(key: str) -> bool:
        return key in m and m[key] is not None and math.isfinite(m[key])

    if m.get("mpp_from_override") == 1.0:
        flags["mpp_from_override"] = (f"resolution {m.get('mpp'):g} µm/px came from --mpp, not "
                                      "the slide's metadata")
    if finite("fraction_tiles_excluded") and m["fraction_tiles_excluded"] > rules["tiles_excluded_high"]:
        flags["tiles_excluded_high"] = (f"{m['fraction_tiles_excluded']:.0%} of tissue tiles "
                                        f"excluded by tile QC (> {rules['tiles_excluded_high']:.0%})")
    if stain == "HE":
        if m.get("n_tiles_tumour", 1.0) <= rules["no_tumour"]:
            flags["no_tumour"] = "no tile classified TUM: tumour compartments are undefined"
        if finite("nuclei_per_mm2"):
            if m["nuclei_per_mm2"] < rules["nuclei_density_low"]:
                flags["nuclei_density_low"] = (
                    f"{m['nuclei_per_mm2']:.0f} nuclei per mm² of tissue (< "
                    f"{rules['nuclei_density_low']:g}): segmentation likely failed")
            elif m["nuclei_per_mm2"] > rules["nuclei_density_high"]:
                flags["nuclei_density_high"] = (
                    f"{m['nuclei_per_mm2']:.0f} nuclei per mm² of tissue (> "
                    f"{rules['nuclei_density_high']:g}): over-segmentation")
        if finite("lymphocyte_fraction") and m["lymphocyte_fraction"] > rules["lymphocyte_fraction_high"]:
            flags["lymphocyte_fraction_high"] = (
                f"{m['lymphocyte_fraction']:.0%} of nuclei called lymphocytes (> "
                f"{rules['lymphocyte_fraction_high']:.0%})")
    else:
        if not finite("registration_overlap_dice"):
            flags["ihc_unregistered"] = ("no H&E slide of the patient to register onto: "
                                         "compartment densities undefined")
        elif m["registration_overlap_dice"] < rules["registration_poor"]:
            flags["registration_poor"] = (
                f"tissue overlap with the H&E slide after registration Dice "
                f"{m['registration_overlap_dice']:.2f} (< {rules['registration_poor']:g})")
    return flags


def qc_record(measures: dict[str, Any], stain: str, rules: dict[str, float]) -> dict[str, Any]:
    """The ``qc.json`` content: measures (NaN as null), flags and the rules applied."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else float(v))
             for k, v in sorted(measures.items())}
    return {"measures": clean, "flags": plausibility_flags(measures, stain, rules),
            "rules": rules}
