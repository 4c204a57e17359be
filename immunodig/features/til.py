"""Tumour-infiltrating lymphocyte (TIL) densities by compartment, for H&E nuclei and IHC cells.

Compartments come from the tissue classifier's tile map (:class:`TileMap`, tile edge
``T = cfg.tile_size_um``); a cell belongs to the tile whose square contains its centroid. Areas are
tissue areas (tile area x ``tissue_fraction``).

- *intra-epithelial*: cells in TUM tiles / tissue area of TUM tiles;
- *stromal*: cells in STR tiles whose centre lies within ``cfg.margin_um`` of a TUM tile centre
  (distance minus half a tile, as in :mod:`immunodig.features.margin`) / their area;
- *tumour region*: cells in the tumour region (TUM tiles with enclosed holes filled;
  :func:`immunodig.features.margin.compartments`) / its area;
- *invasive margin band* (± ``cfg.margin_um`` around the tumour edge) and *core*: computed by
  :func:`immunodig.features.margin.margin_features` as ``til_density_margin_per_mm2`` /
  ``til_density_core_per_mm2`` from the same lymphocytes (IHC: here, with the marker prefix);
- *lymphocyte fraction in tumour*: lymphocytes / all nuclei in the tumour region;
- *hotspot*: maximum over all square windows of k x k tiles, ``k = max(1, round(1000 µm / T))``
  (≈1 mm²), of cells in the window / window area ``(k T)²``, anywhere on the slide.

Edge cases: a density whose compartment has no area is NaN (undefined, e.g. no tumour); a
compartment with area but no lymphocyte gives 0; the fraction is NaN when the tumour region holds
no nucleus; the hotspot is 0 without lymphocytes and NaN for an empty tile map.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import ndimage

from immunodig.config import BuildConfig
from immunodig.features.composition import ratio
from immunodig.features.margin import compartments, count_in_cells
from immunodig.features.tilemap import TileMap

#: Window edge of the hotspot search, µm (1 mm² windows).
HOTSPOT_WINDOW_UM = 1000.0


def peritumoural_stroma(tmap: TileMap, margin_um: float) -> np.ndarray:
    """STR cells within ``margin_um`` of a TUM cell (centre distance minus half a tile)."""
    tum = tmap.is_class("TUM")
    if not tum.any():
        return np.zeros(tum.shape, dtype=bool)
    dist_um = (ndimage.distance_transform_edt(~tum) - 0.5) * tmap.tile_um
    return tmap.is_class("STR") & (dist_um <= margin_um)


def hotspot_density(tmap: TileMap, xy_um: np.ndarray) -> float:
    """Maximum cell count per mm² over ≈1 mm² windows of whole tiles (see module docstring)."""
    if tmap.code.size == 0:
        return float("nan")
    k = max(1, int(round(HOTSPOT_WINDOW_UM / tmap.tile_um)))
    counts = np.zeros(tmap.code.shape, dtype=np.float64)
    if len(xy_um):
        rows, cols, inside = tmap.cells_of(xy_um[:, 0], xy_um[:, 1])
        np.add.at(counts, (rows[inside], cols[inside]), 1.0)
    h, w = counts.shape
    padded = np.zeros((max(h, k) + 1, max(w, k) + 1))
    padded[1 : h + 1, 1 : w + 1] = counts
    s = padded.cumsum(0).cumsum(1)
    window = s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]
    return float(window.max() / (k * tmap.tile_um / 1000.0) ** 2)


def _regions(tmap: TileMap, comp, margin_um: float) -> dict[str, np.ndarray]:
    """Tile masks of the TIL compartments (module docstring), by compartment name."""
    return {
        "intraepithelial": tmap.is_class("TUM"),
        "stromal": peritumoural_stroma(tmap, margin_um),
        "tumour_region": comp.tumour_region,
    }


def compartment_densities(tmap: TileMap, cells_xy_um: np.ndarray, all_xy_um: np.ndarray | None,
                          cfg: BuildConfig, prefix: str) -> dict[str, float]:
    """Densities of ``cells_xy_um`` per compartment, named ``{prefix}_density_<compartment>_per_mm2``.

    ``all_xy_um`` (all nuclei) adds ``{prefix}_fraction_tumour``; ``None`` leaves it out.
    """
    comp = compartments(tmap, cfg.margin_um)
    area = tmap.tissue_area_mm2
    out: dict[str, float] = {}
    for name, where in _regions(tmap, comp, cfg.margin_um).items():
        out[f"{prefix}_density_{name}_per_mm2"] = ratio(count_in_cells(tmap, cells_xy_um, where),
                                                        float(area[where].sum()))
    if all_xy_um is not None:
        out[f"{prefix}_fraction_tumour"] = ratio(count_in_cells(tmap, cells_xy_um, comp.tumour_region),
                                                 count_in_cells(tmap, all_xy_um, comp.tumour_region))
    out[f"{prefix}_hotspot_density_per_mm2"] = hotspot_density(tmap, cells_xy_um)
    return out


def _xy(table: pl.DataFrame, mask: np.ndarray | None = None) -> np.ndarray:
    xy = np.column_stack([table["x_um"].cast(pl.Float64).to_numpy(),
                          table["y_um"].cast(pl.Float64).to_numpy()]).reshape(-1, 2)
    if mask is not None:
        xy = xy[mask]
    return xy[np.isfinite(xy).all(axis=1)]


def til_features(tiles: pl.DataFrame, nuclei: pl.DataFrame, cfg: BuildConfig) -> dict[str, float]:
    """H&E TIL features of one slide (``nuclei.parquet`` rows with ``cell_class == "lymphocyte"``).

    Returns ``til_density_{intraepithelial,stromal,tumour_region}_per_mm2``,
    ``til_fraction_tumour`` and ``til_hotspot_density_per_mm2``.
    """
    tmap = TileMap.from_tiles(tiles, cfg.tile_size_um)
    lym = (nuclei["cell_class"].fill_null("") == "lymphocyte").to_numpy()
    return compartment_densities(tmap, _xy(nuclei, lym), _xy(nuclei), cfg, "til")


#: Area feature (``{marker}_area_<name>_mm2``) of each IHC density's compartment: the weight of
#: that density when a patient's IHC slides are combined (the IHC slide's own areas, so IHC
#: densities aggregate with IHC-side weights).
IHC_AREA_OF: dict[str, str] = {"intraepithelial": "tumour", "stromal": "stroma",
                               "tumour_region": "tumour_region", "margin": "margin",
                               "core": "core"}


def ihc_features(tiles: pl.DataFrame, positive_cells: pl.DataFrame, cfg: BuildConfig, marker: str) -> dict[str, float]:
    """IHC positive-cell densities (e.g. CD3) in the compartments of a classified tile map.

    ``tiles`` is the tile table giving compartments (the patient's H&E slide, with the IHC cells
    registered into its frame, or an IHC slide's own classified tiles); ``positive_cells`` has
    ``x_um, y_um`` in that frame. Returns ``{marker}_density_{intraepithelial,stromal,
    tumour_region,margin,core}_per_mm2``, the compartment areas they divide by
    (``{marker}_area_{tumour,stroma,tumour_region,margin,core}_mm2``, see :data:`IHC_AREA_OF`)
    and ``{marker}_hotspot_density_per_mm2`` (``marker`` lower-case, e.g. ``cd3``).
    """
    marker = marker.lower()
    tmap = TileMap.from_tiles(tiles, cfg.tile_size_um)
    xy = _xy(positive_cells)
    comp = compartments(tmap, cfg.margin_um)
    area = tmap.tissue_area_mm2
    regions = {**_regions(tmap, comp, cfg.margin_um), "margin": comp.margin, "core": comp.core}
    out: dict[str, float] = {}
    for name, where in regions.items():
        area_mm2 = float(area[where].sum())
        out[f"{marker}_density_{name}_per_mm2"] = ratio(count_in_cells(tmap, xy, where), area_mm2)
        out[f"{marker}_area_{IHC_AREA_OF[name]}_mm2"] = area_mm2
    out[f"{marker}_hotspot_density_per_mm2"] = hotspot_density(tmap, xy)
    return out
