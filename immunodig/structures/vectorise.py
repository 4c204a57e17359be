"""Label images to polygons (the inverse of :mod:`immunodig.structures.rasterise`).

Each object's outline is traced at the 0.5 level between its pixels and the others
(``skimage.measure.find_contours``), which runs along pixel edges (corners cut diagonally), so
rasterising the polygon again by pixel centres gives back the same pixels. Holes and islands
inside holes come from combining the traced rings by symmetric difference.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np

from immunodig.structures.rasterise import Grid


def mask_polygon(mask: np.ndarray, offset_rc: tuple[int, int] = (0, 0)) -> Any:
    """Polygon (or MultiPolygon) in pixel-edge coordinates ``(x = col, y = row)`` of a boolean mask;
    ``offset_rc`` is added (the mask's position in a larger image). ``None`` when the mask is empty."""
    from shapely.geometry import Polygon
    from skimage.measure import find_contours

    if not mask.any():
        return None
    padded = np.pad(mask, 1).astype(np.float32)
    rings = []
    for c in find_contours(padded, 0.5):
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


def instance_polygons(instances: np.ndarray) -> dict[int, Any]:
    """``{instance id: polygon}`` of an int instance map, in its pixel-edge coordinates."""
    from scipy import ndimage as ndi

    out = {}
    for i, sl in enumerate(ndi.find_objects(instances), start=1):
        if sl is None:
            continue
        geom = mask_polygon(instances[sl] == i, (sl[0].start, sl[1].start))
        if geom is not None:
            out[i] = geom
    return out


def to_level0(geometry: Any, grid: Grid) -> Any:
    """A polygon in a grid's pixel-edge coordinates moved to level-0 pixels."""
    from shapely import affinity

    return affinity.affine_transform(geometry, [1 / grid.scale, 0, 0, 1 / grid.scale,
                                                grid.origin_px[0], grid.origin_px[1]])
