"""Features of structures segmented by a model (``structures.parquet``; definitions in
:mod:`immunodig.features.segmented_structures_specs`)."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from immunodig.features.composition import ratio
from immunodig.features.margin import Compartments
from immunodig.features.segmented_structures_specs import STRUCTURE_SYNONYMS
from immunodig.features.tilemap import TileMap


def structure_key(class_name: str) -> str | None:
    """Feature key (``tls``, ``gland``, ``bud``, ``necrosis``) of a model's class name, else ``None``."""
    norm = re.sub(r"[^a-z]", "", class_name.lower())
    return next((k for k, names in STRUCTURE_SYNONYMS.items() if norm in names), None)


def segmented_structure_features(structures: pl.DataFrame, tmap: TileMap, comp: Compartments,
                                 tissue_area_mm2: float) -> dict[str, float]:
    """Features of every class with a feature key (other classes are left out)."""
    keys = np.array([structure_key(c) for c in structures["class"].to_list()], dtype=object)
    values: dict[str, float] = {}
    tumour_mm2 = float(np.where(comp.tumour_region, tmap.tissue_area_mm2, 0.0).sum())
    for key in STRUCTURE_SYNONYMS:
        sel = structures.filter(pl.Series(keys == key)) if len(structures) else structures
        n = len(sel)
        area_mm2 = sel["area_um2"].to_numpy() / 1e6
        intra, peri, dist = np.zeros(n, bool), np.zeros(n, bool), np.zeros(0)
        if n and comp.tumour_region.size:
            rows, cols, inside = tmap.cells_of(sel["x_um"].to_numpy(), sel["y_um"].to_numpy())
            intra = inside & comp.tumour_region[rows, cols]
            peri = inside & comp.outer_margin[rows, cols]
            signed = comp.signed_um[rows, cols]
            dist = signed[inside & np.isfinite(signed)]
        near = int(intra.sum() + peri.sum())
        values.update({
            f"seg_{key}_count": float(n),
            f"seg_{key}_intratumoural_count": float(intra.sum()),
            f"seg_{key}_peritumoural_count": float(peri.sum()),
            f"seg_{key}_density_tumour_per_mm2": ratio(near, tumour_mm2),
            f"seg_{key}_intratumoural_fraction": ratio(float(intra.sum()), near),
            f"seg_{key}_area_fraction": ratio(float(area_mm2.sum()), tissue_area_mm2),
            f"seg_{key}_area_mean_mm2": float(area_mm2.mean()) if n else float("nan"),
            f"seg_{key}_edge_distance_median_um": float(np.median(dist)) if dist.size else float("nan"),
        })
    return values
