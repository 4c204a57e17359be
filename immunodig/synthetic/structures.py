"""Structure truth of a synthetic slide: every TLS-like aggregate and tumour gland as a polygon.

* ``TLS``: each connected LYM region of the class map (lymphoid aggregates are the only LYM).
* ``Gland``: each connected region of gland tissue (epithelium and lumen of
  :func:`~immunodig.synthetic.textures.gland_geometry`) inside TUM, evaluated on blocks of
  :func:`gland_step` level-0 px (the 1 µm grid on which the renderer samples the gland layout), so
  a gland cut by intratumoural stroma, necrosis, mucus or an aggregate is split or clipped as drawn.

Polygons run along pixel edges of their grid (corners cut diagonally) in level-0 pixels:
rasterised by pixel centres on that grid, each gives back exactly its pixels. Connectivity is 4
(pixels touching only at a corner are separate objects). :func:`structures_geojson` writes them
as a QuPath-style GeoJSON, training data for ``train-segmenter`` (docs/synthetic.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from immunodig.synthetic import textures as tx
from immunodig.synthetic.fields import Fields
from immunodig.vocab import KATHER_CLASSES

TLS_CLASS, GLAND_CLASS = "TLS", "Gland"
#: QuPath's region-of-interest class: the annotation marks where the truth is complete.
ROI_CLASS = "Region*"
#: Structure classes of the truth file, with their QuPath colours.
STRUCTURE_COLOURS: dict[str, list[int]] = {TLS_CLASS: [0, 90, 200], GLAND_CLASS: [150, 60, 170]}
#: Pitch (µm) of the grid the gland layout is sampled on (as the tumour texture samples it).
GLAND_GRID_UM = 1.0
#: Points per call of the gland geometry (bounds memory on large slides).
_CHUNK = 1 << 20


@dataclass(frozen=True)
class TruthStructure:
    """One drawn structure: class and level-0 pixel polygon (shapely Polygon or MultiPolygon)."""

    class_name: str
    geometry: Any


def gland_step(mpp: float) -> int:
    """Level-0 pixels per edge of a gland-grid block (that of ``Patch.coarse`` at 1 µm)."""
    return max(1, int(round(GLAND_GRID_UM / mpp)))


def tls_mask(classmap: np.ndarray) -> np.ndarray:
    """Aggregate pixels on the class-map grid."""
    return classmap == KATHER_CLASSES.index("LYM")


def gland_mask(classmap: np.ndarray, factor: int, mpp: float, fields: Fields) -> np.ndarray:
    """Gland pixels on the grid of :func:`gland_step` blocks (block ``(i, j)`` covers level-0 rows
    ``[i * step, (i + 1) * step)``); a block's class is the class-map class of its centre pixel."""
    step = gland_step(mpp)
    n_px = classmap.shape[0] * factor
    centre = (np.arange(-(-n_px // step)) * step + step // 2) // factor
    centre = np.minimum(centre, classmap.shape[0] - 1)
    tum = classmap[centre][:, centre] == KATHER_CLASSES.index("TUM")
    out = np.zeros(tum.shape, dtype=bool)
    flat = np.flatnonzero(tum)
    pitch = np.float32(step * mpp)
    for lo in range(0, flat.size, _CHUNK):
        idx = flat[lo:lo + _CHUNK]
        rows, cols = np.divmod(idx, tum.shape[1])
        wall, _, _ = tx.gland_geometry((cols + 0.5).astype(np.float32) * pitch,
                                       (rows + 0.5).astype(np.float32) * pitch, fields)
        out.flat[idx] = wall > 0
    return out


def trace_mask(mask: np.ndarray, offset_rc: tuple[int, int] = (0, 0)) -> Any:
    """Polygon (or MultiPolygon, holes kept) along the pixel edges of a boolean mask, in its pixel
    coordinates (pixel ``(r, c)`` spans ``x in [c, c + 1]``, ``y in [r, r + 1]``) plus ``offset_rc``;
    ``None`` when empty."""
    from shapely.geometry import Polygon
    from skimage.measure import find_contours

    rings = []
    for c in find_contours(np.pad(mask, 1).astype(np.float32), 0.5):
        if len(c) < 4:
            continue
        poly = Polygon(np.column_stack([c[:, 1] - 0.5 + offset_rc[1], c[:, 0] - 0.5 + offset_rc[0]]))
        poly = poly if poly.is_valid else poly.buffer(0)
        if not poly.is_empty and poly.area > 0:
            rings.append(poly)
    if not rings:
        return None
    geom = reduce(lambda a, b: a.symmetric_difference(b), rings)
    return geom if geom.is_valid else geom.buffer(0)


def mask_objects(mask: np.ndarray, class_name: str, px_per_cell: float) -> list[TruthStructure]:
    """One structure per 4-connected component of ``mask``, scaled to level-0 pixels."""
    from scipy import ndimage
    from shapely import affinity

    labels, _ = ndimage.label(mask)
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        geom = trace_mask(labels[sl] == i, (sl[0].start, sl[1].start))
        if geom is not None:
            out.append(TruthStructure(class_name, affinity.scale(geom, px_per_cell, px_per_cell, origin=(0, 0))))
    return out


def slide_structures(classmap: np.ndarray, factor: int, mpp: float, fields: Fields) -> list[TruthStructure]:
    """Every TLS-like aggregate and tumour gland of a slide (module docstring)."""
    return (mask_objects(tls_mask(classmap), TLS_CLASS, factor)
            + mask_objects(gland_mask(classmap, factor, mpp, fields), GLAND_CLASS, gland_step(mpp)))


def structure_summary(structures: list[TruthStructure], mpp: float) -> dict[str, dict[str, float]]:
    """``{class: {"count", "area_mm2"}}`` of the truth structures (polygon areas)."""
    px_mm2 = mpp ** 2 * 1e-6
    return {c: {"count": sum(s.class_name == c for s in structures),
                "area_mm2": float(sum(s.geometry.area for s in structures if s.class_name == c) * px_mm2)}
            for c in STRUCTURE_COLOURS}


def _feature(geometry: Any, class_name: str, colour: list[int], measurements: dict | None = None) -> dict:
    from shapely.geometry import mapping
    from shapely.geometry.polygon import orient

    parts = [orient(p, 1.0) for p in getattr(geometry, "geoms", [geometry])]
    props: dict = {"objectType": "annotation", "classification": {"name": class_name, "color": colour}}
    if measurements:
        props["measurements"] = measurements
    geom = mapping(parts[0] if len(parts) == 1 else type(geometry)(parts))
    return {"type": "Feature", "geometry": geom, "properties": props}


def structures_geojson(structures: list[TruthStructure], width_px: int, height_px: int, mpp: float) -> dict:
    """QuPath-style FeatureCollection: a ``Region*`` annotation over the whole slide (every
    structure of the slide is drawn, so the truth is complete on tissue and glass alike), then one
    annotation per structure with measurement ``area_um2``."""
    from shapely.geometry import box

    feats = [_feature(box(0, 0, width_px, height_px), ROI_CLASS, [255, 200, 0])]
    feats += [_feature(s.geometry, s.class_name, STRUCTURE_COLOURS[s.class_name],
                       {"area_um2": float(s.geometry.area * mpp ** 2)}) for s in structures]
    return {"type": "FeatureCollection", "features": feats}
