"""Tumour edge, invasive-margin band and tumour core from the tile map (Immunoscore compartments).

Definitions (all on the tile grid, distances between tile centres):

- *tumour region* ``T``: TUM tiles with enclosed holes filled (stroma, lymphocytes, debris ...
  surrounded by tumour are intratumoural), restricted to classified tissue tiles;
- *host tissue* ``H``: classified tissue tiles outside ``T``;
- *tumour edge*: the boundary between ``T`` and ``H`` (tumour facing glass or unclassified tiles is
  not an invasive edge);
- distance of a tile to the edge: Euclidean distance from its centre to the centre of the nearest
  tile on the other side, minus half a tile (so a tile adjacent to the edge is at ``T / 2``);
- *invasive margin*: tiles of ``T`` or ``H`` within ``cfg.margin_um`` of the edge (a band of
  half-width ``margin_um`` on each side); *core*: the rest of ``T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from immunodig.features.composition import CLASS_STEM, ratio
from immunodig.features.tilemap import TileMap

#: Classes whose share is reported inside the margin and the core.
COMPARTMENT_CLASSES: tuple[str, ...] = ("LYM", "STR", "TUM")


@dataclass(frozen=True)
class Compartments:
    """Tumour region, host tissue, edge distances and the margin/core split of one slide.

    Attributes
    ----------
    tumour_region, host : numpy.ndarray of bool
        ``T`` and ``H`` (see module docstring).
    signed_um : numpy.ndarray of float64
        Distance of each tile to the tumour edge in µm: negative inside ``T``, positive in ``H``,
        NaN elsewhere; ``-inf`` / ``+inf`` when the slide has no host tissue / no tumour.
    margin, inner_margin, outer_margin, core : numpy.ndarray of bool
        Invasive-margin band (``inner`` on the tumour side, ``outer`` on the host side) and core.
    edge_length_mm : float
        Length of the tumour edge (:func:`crofton_length_um` between ``T`` and ``H``).
    """

    tumour_region: np.ndarray
    host: np.ndarray
    signed_um: np.ndarray
    margin: np.ndarray
    inner_margin: np.ndarray
    outer_margin: np.ndarray
    core: np.ndarray
    edge_length_mm: float


def _distance_to(target: np.ndarray) -> np.ndarray:
    """Distance (in tiles) from every cell centre to the nearest ``target`` cell centre."""
    if not target.any():
        return np.full(target.shape, np.inf)
    return ndimage.distance_transform_edt(~target)


def crofton_length_um(a: np.ndarray, b: np.ndarray, cell_um: float) -> float:
    """Length of the boundary between the cell sets ``a`` and ``b`` (Crofton estimate).

    Counts a/b transitions between neighbouring cells along the four grid directions and applies
    Cauchy-Crofton, ``L = pi/8 * sum_theta N_theta * d_theta`` (line spacing ``d`` = cell edge
    for 0/90 degrees, edge / sqrt 2 for the diagonals): unbiased for boundaries of any
    orientation, unlike the staircase length, which overestimates a circle by 4/pi.
    """
    def transitions(p: tuple[slice, slice], q: tuple[slice, slice]) -> int:
        return int((a[p] & b[q]).sum() + (b[p] & a[q]).sum())

    s, e, all_ = slice(1, None), slice(None, -1), slice(None)
    straight = transitions((all_, s), (all_, e)) + transitions((s, all_), (e, all_))
    diagonal = transitions((s, s), (e, e)) + transitions((s, e), (e, s))
    return float(np.pi / 8 * cell_um * (straight + diagonal / np.sqrt(2)))


def compartments(tmap: TileMap, margin_um: float) -> Compartments:
    """Split the slide's tissue into tumour region, host tissue, margin band and core."""
    tissue = tmap.classified
    tumour = ndimage.binary_fill_holes(tmap.is_class("TUM")) & tissue if tissue.size else tissue
    host = tissue & ~tumour
    depth = (_distance_to(host) - 0.5) * tmap.tile_um
    reach = (_distance_to(tumour) - 0.5) * tmap.tile_um
    signed = np.full(tissue.shape, np.nan)
    signed[tumour] = -depth[tumour]
    signed[host] = reach[host]
    inner = tumour & (depth <= margin_um)
    outer = host & (reach <= margin_um)
    return Compartments(
        tumour_region=tumour,
        host=host,
        signed_um=signed,
        margin=inner | outer,
        inner_margin=inner,
        outer_margin=outer,
        core=tumour & ~inner,
        edge_length_mm=crofton_length_um(tumour, host, tmap.tile_um) / 1000.0,
    )


def _class_shares(tmap: TileMap, where: np.ndarray) -> dict[str, float]:
    area = np.where(where, tmap.tissue_area_mm2, 0.0)
    total = area.sum()
    return {c: ratio(area[tmap.is_class(c)].sum(), total) for c in COMPARTMENT_CLASSES}


def count_in_cells(tmap: TileMap, xy_um: np.ndarray, where: np.ndarray) -> int:
    """Number of the points ``xy_um`` (N, 2) lying in the cells ``where``."""
    if xy_um.shape[0] == 0 or where.size == 0:
        return 0
    rows, cols, inside = tmap.cells_of(xy_um[:, 0], xy_um[:, 1])
    return int((inside & where[rows, cols]).sum())


def margin_features(
    tmap: TileMap, comp: Compartments, lymphocytes_xy_um: np.ndarray | None
) -> dict[str, float]:
    """Invasive-margin and core features; TIL densities only when lymphocytes are given.

    Parameters
    ----------
    tmap : TileMap
        The slide's tile map.
    comp : Compartments
        Output of :func:`compartments` for ``tmap``.
    lymphocytes_xy_um : numpy.ndarray of shape (N, 2) or None
        Lymphocyte centroids (µm); ``None`` when the nuclei stage did not run.
    """
    area = tmap.tissue_area_mm2
    out: dict[str, float] = {
        "area_tumour_region_mm2": float(area[comp.tumour_region].sum()),
        "tumour_edge_length_mm": comp.edge_length_mm,
        "area_margin_mm2": float(area[comp.margin].sum()),
        "area_margin_inner_mm2": float(area[comp.inner_margin].sum()),
        "area_margin_outer_mm2": float(area[comp.outer_margin].sum()),
        "area_core_mm2": float(area[comp.core].sum()),
    }
    for name, where in (("margin", comp.margin), ("core", comp.core)):
        for cls, share in _class_shares(tmap, where).items():
            out[f"prop_{CLASS_STEM[cls]}_{name}"] = share
    if lymphocytes_xy_um is not None:
        for name, where in (("margin", comp.margin), ("core", comp.core)):
            n = count_in_cells(tmap, lymphocytes_xy_um, where)
            out[f"til_density_{name}_per_mm2"] = ratio(n, out[f"area_{name}_mm2"])
    return out
