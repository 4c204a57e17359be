"""Tissue composition of a slide from its classified tile map.

Areas are tissue areas: a tile contributes ``tissue_fraction x tile area``. Proportions are taken
over classified tissue, i.e. QC-passed tiles of any class but BACK. Definitions and edge-case values
are declared in :mod:`immunodig.features.composition_specs`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from immunodig.config import BuildConfig
from immunodig.features.tilemap import UNCLASSIFIED, TileMap
from immunodig.vocab import KATHER_CLASSES

#: Feature-name stem of each Kather class.
CLASS_STEM: dict[str, str] = {
    "ADI": "adipose",
    "BACK": "background",
    "DEB": "debris",
    "LYM": "lymphocytes",
    "MUC": "mucus",
    "MUS": "muscle",
    "NORM": "normal_mucosa",
    "STR": "stroma",
    "TUM": "tumour",
}
#: Kather classes that are tissue (proportions are over these).
TISSUE_CLASSES: tuple[str, ...] = tuple(c for c in KATHER_CLASSES if c != "BACK")
#: Default minimum LYM probability of a lymphocyte-rich tile (``cfg.extra["lym_rich_min_prob"]``).
LYM_RICH_MIN_PROB = 0.3


def ratio(num: float, den: float) -> float:
    """``num / den``, or NaN when ``den`` is 0 (the quantity is undefined)."""
    return float(num / den) if den > 0 else float("nan")


def class_areas_mm2(tmap: TileMap, where: np.ndarray | None = None) -> dict[str, float]:
    """Tissue area (mm²) of each Kather class, optionally restricted to the cells ``where``."""
    area = tmap.tissue_area_mm2
    if where is not None:
        area = np.where(where, area, 0.0)
    sums = np.bincount(
        tmap.code[tmap.code != UNCLASSIFIED].astype(np.int64),
        weights=area[tmap.code != UNCLASSIFIED],
        minlength=len(KATHER_CLASSES),
    )
    return {c: float(sums[i]) for i, c in enumerate(KATHER_CLASSES)}


def class_proportions(areas: dict[str, float]) -> dict[str, float]:
    """Share of each tissue class in the classified tissue area (BACK excluded); NaN if none."""
    total = sum(areas[c] for c in TISSUE_CLASSES)
    return {c: ratio(areas[c], total) for c in TISSUE_CLASSES}


def contact_fraction(tmap: TileMap, of: str, touching: str) -> float:
    """Fraction of ``of`` tiles with at least one ``touching`` tile among their 8 neighbours."""
    src = tmap.is_class(of)
    n = int(src.sum())
    if n == 0:
        return float("nan")
    near = ndimage.binary_dilation(tmap.is_class(touching), structure=np.ones((3, 3), bool))
    return float((src & near).sum() / n)


def composition_features(
    tmap: TileMap, tissue_area_mm2: float, cfg: BuildConfig
) -> dict[str, float]:
    """Composition features of one slide.

    Parameters
    ----------
    tmap : TileMap
        The slide's tile map.
    tissue_area_mm2 : float
        Tissue area from the tissue mask.
    cfg : BuildConfig
        Build parameters (``cfg.extra["lym_rich_min_prob"]`` overrides the lymphocyte-rich
        threshold).

    Returns
    -------
    dict
        Feature name -> value (NaN where undefined).
    """
    areas = class_areas_mm2(tmap)
    props = class_proportions(areas)
    classified_mm2 = sum(areas[c] for c in TISSUE_CLASSES)
    unclassified = tmap.code == UNCLASSIFIED
    out: dict[str, float] = {
        "area_tissue_mm2": float(tissue_area_mm2),
        "area_classified_mm2": classified_mm2,
        "area_unclassified_mm2": float(tmap.tissue_area_mm2[unclassified].sum()),
    }
    out.update({f"area_{CLASS_STEM[c]}_mm2": areas[c] for c in KATHER_CLASSES})
    out.update({f"prop_{CLASS_STEM[c]}": props[c] for c in TISSUE_CLASSES})
    tum, strm = areas["TUM"], areas["STR"]
    out["tsr_stroma_fraction"] = ratio(strm, strm + tum)
    out["tumour_necrosis_fraction"] = ratio(areas["DEB"], areas["DEB"] + tum)
    out["tumour_mucin_fraction"] = ratio(areas["MUC"], areas["MUC"] + tum)
    threshold = float(cfg.extra.get("lym_rich_min_prob", LYM_RICH_MIN_PROB))
    n_tissue_tiles = int(tmap.classified.sum())
    n_rich = int((tmap.classified & (tmap.prob_lym >= threshold)).sum())
    out["lym_rich_tile_fraction"] = ratio(n_rich, n_tissue_tiles)
    out["adipose_involvement_fraction"] = contact_fraction(tmap, "TUM", "ADI")
    out["muscle_involvement_fraction"] = contact_fraction(tmap, "TUM", "MUS")
    return out
