"""The tile-map compartments the features use, as polygons in level-0 pixels.

The compartments are those of :func:`immunodig.features.margin.compartments` on the slide's
:class:`~immunodig.features.tilemap.TileMap` (built with the run's ``tile_size_um`` and
``margin_um`` from the manifest): each is the union of the rectangles (``x_px, y_px, w_px, h_px``)
of its tiles, so a polygon covers exactly the tiles a feature counts. Measurements are those the
features divide by (tissue area = tile area x ``tissue_fraction``) plus the polygon's own area.
Tumour buds are the clusters of epithelial nuclei that ``tumour_bud_count`` counts
(:func:`immunodig.features.spatial.tumour_bud_clusters`), outlined around their nuclei.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from immunodig.config import BuildConfig
from immunodig.report.slide_artefacts import SlideArtefacts

#: QuPath classification name of each compartment -> colour (RGB hex).
REGION_COLOURS: dict[str, str] = {
    "tissue": "#2ca02c",
    "tumour region": "#9467bd",
    "margin inner": "#d62728",
    "margin outer": "#ff7f0e",
    "core": "#8c564b",
    "TLS": "#1f3fbf",  # the LYM colour of the tile map
    "bud": "#17becf",
}
#: Outline of a tumour bud: its nuclei's centroids, hull buffered by about a tumour cell's radius
#: (µm), so a single-cell bud is a disc of twice this diameter.
BUD_OUTLINE_UM = 5.0


@dataclass
class Region:
    """One compartment: its QuPath class name, geometry (shapely, level-0 px) and measurements."""

    name: str
    geometry: object
    measurements: dict[str, float] = field(default_factory=dict)


def build_config(art: SlideArtefacts) -> BuildConfig:
    """The run's build configuration from the manifest (defaults for keys it lacks)."""
    from dataclasses import fields

    names = {f.name for f in fields(BuildConfig)}
    return BuildConfig(**{k: v for k, v in art.config.items() if k in names})


def cells_polygon(tiles: pl.DataFrame, rows: np.ndarray, cols: np.ndarray,
                  where: np.ndarray):
    """Union of the rectangles of the tiles whose grid cell lies in ``where`` (shapely)."""
    import shapely

    take = np.flatnonzero(where[rows, cols]) if where.size else np.zeros(0, np.int64)
    x = tiles["x_px"].to_numpy().astype(float)[take]
    y = tiles["y_px"].to_numpy().astype(float)[take]
    w = tiles["w_px"].to_numpy().astype(float)[take]
    h = tiles["h_px"].to_numpy().astype(float)[take]
    return shapely.union_all(shapely.box(x, y, x + w, y + h))


def _lymphocytes_um(art: SlideArtefacts) -> np.ndarray | None:
    """Lymphocyte centroids (N, 2) in µm, or ``None`` without nuclei."""
    nuclei = art.nuclei
    if nuclei is None or "cell_class" not in nuclei.columns:
        return None
    lym = nuclei.filter(pl.col("cell_class") == "lymphocyte")
    if "x_um" in lym.columns:
        xy = lym.select("x_um", "y_um").to_numpy().astype(float)
    else:
        xy = lym.select("x_px", "y_px").to_numpy().astype(float) * art.mpp
    return xy.reshape(-1, 2)


def slide_regions(art: SlideArtefacts) -> list[Region]:
    """The compartments of a classified slide (empty ones left out).

    Returns
    -------
    list of Region
        ``tissue`` (classified tissue tiles), ``tumour region``, ``margin inner``,
        ``margin outer``, ``core``, one ``TLS`` per TLS candidate (its ``position``
        and ``edge_distance_um`` too) and one ``bud`` per tumour bud (:func:`bud_regions`);
        measurements ``area_um2`` (polygon),
        ``tissue_area_mm2``, ``n_tiles`` and, with nuclei, ``lymphocytes`` and
        ``til_density_per_mm2``; the tumour region also ``tumour_edge_length_mm``.
    """
    from immunodig.features.composition import ratio
    from immunodig.features.margin import compartments, count_in_cells
    from immunodig.features.structures import tls_candidates
    from immunodig.features.tilemap import TileMap

    tiles = art.tiles
    if tiles is None or tiles.height == 0 or tiles["pred_class"].drop_nulls().len() == 0:
        return []
    cfg = build_config(art)
    tmap = TileMap.from_tiles(tiles, cfg.tile_size_um)
    comp = compartments(tmap, cfg.margin_um)
    rows = np.round(tiles["y_um"].to_numpy().astype(float) / tmap.tile_um).astype(np.int64) - tmap.row0
    cols = np.round(tiles["x_um"].to_numpy().astype(float) / tmap.tile_um).astype(np.int64) - tmap.col0
    masks = {"tissue": tmap.classified, "tumour region": comp.tumour_region,
             "margin inner": comp.inner_margin, "margin outer": comp.outer_margin,
             "core": comp.core}
    lym = _lymphocytes_um(art)
    px_area_um2 = art.mpp * float(art.slide.get("mpp_y") or art.mpp)
    out: list[Region] = []
    for name, where in masks.items():
        if not where.any():
            continue
        geom = cells_polygon(tiles, rows, cols, where)
        tissue_mm2 = float(tmap.tissue_area_mm2[where].sum())
        m = {"area_um2": float(geom.area) * px_area_um2, "tissue_area_mm2": tissue_mm2,
             "n_tiles": int(where.sum())}
        if lym is not None:
            n = count_in_cells(tmap, lym, where)
            m["lymphocytes"] = n
            m["til_density_per_mm2"] = ratio(n, tissue_mm2)
        if name == "tumour region":
            m["tumour_edge_length_mm"] = comp.edge_length_mm
        out.append(Region(name, geom, m))
    tls = tls_candidates(tmap, comp, cfg)
    for k in range(len(tls.area_mm2)):
        where = tls.mask(k)
        m = {"area_um2": 0.0, "tissue_area_mm2": float(tls.area_mm2[k]),
             "n_tiles": int(where.sum()),
             "position": "intratumoural" if tls.intratumoural[k] else
                         "peritumoural" if tls.peritumoural[k] else "distant",
             "edge_distance_um": float(tls.edge_distance_um[k])}
        geom = cells_polygon(tiles, rows, cols, where)
        m["area_um2"] = float(geom.area) * px_area_um2
        out.append(Region("TLS", geom, m))
    out.extend(bud_regions(art, tmap, comp, cfg))
    return out


def bud_regions(art: SlideArtefacts, tmap, comp, cfg: BuildConfig) -> list[Region]:
    """One ``bud`` per tumour-bud cluster the features count (none without nuclei).

    The polygon (level-0 px) is the convex hull of the bud's nucleus centroids buffered by
    :data:`BUD_OUTLINE_UM`; measurements ``n_nuclei``, ``area_um2`` and the centroid
    ``x_um, y_um``.
    """
    import shapely
    from shapely import affinity

    from immunodig.features.slide_features import nucleus_points
    from immunodig.features.spatial import bud_link_um, tumour_bud_clusters

    nuclei = art.nuclei
    needed = {"x_um", "y_um", "cell_class", "tissue_class"}
    if nuclei is None or not needed <= set(nuclei.columns):
        return []
    epi = nucleus_points(nuclei)["epithelial"]
    mpp_x, mpp_y = art.mpp, float(art.slide.get("mpp_y") or art.mpp)
    out = []
    for members in tumour_bud_clusters(tmap, comp, epi, bud_link_um(cfg)):
        xy_um = epi[members]
        hull = shapely.MultiPoint(xy_um).convex_hull.buffer(BUD_OUTLINE_UM, quad_segs=4)
        geom = affinity.scale(hull, 1 / mpp_x, 1 / mpp_y, origin=(0, 0))
        centre = xy_um.mean(axis=0)
        out.append(Region("bud", geom, {"n_nuclei": int(len(members)), "area_um2": float(hull.area),
                                        "x_um": float(centre[0]), "y_um": float(centre[1])}))
    return out
