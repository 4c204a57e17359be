"""Annotations to label images: class masks and instance maps on a pixel grid.

A grid is given by its level-0 origin and its scale (output pixels per level-0 pixel, i.e.
``level-0 mpp / output mpp``). Output pixel ``(row, col)`` covers level-0
``[origin + col / scale, origin + (col + 1) / scale)`` horizontally and is inside a polygon when
its centre is (``skimage.draw.polygon``), holes taken out.

Labels: ``0`` background, ``k`` (1-based) the ``k``-th class of ``classes``, :data:`IGNORE_LABEL`
for pixels that do not count (outside every region of interest, or under an ``Ignore*`` area,
which wins over any structure).
Where structures overlap, smaller ones are drawn over larger ones (a gland inside a tumour
region keeps its class), whatever the file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from immunodig.errors import AnnotationOutsideImageError
from immunodig.structures.geojson import Annotation

#: Label of pixels that neither train nor score.
IGNORE_LABEL = 255
#: Level-0 pixels an annotation may stray past the image edge (QuPath snaps to the far edge).
EDGE_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class Grid:
    """Pixel grid of an output image: level-0 origin, scale and shape ``(height, width)``."""

    origin_px: tuple[float, float]
    scale: float
    shape: tuple[int, int]

    def to_pixels(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns (float, pixel-centre coordinates) of level-0 points ``(N, 2)``."""
        col = (xy[:, 0] - self.origin_px[0]) * self.scale - 0.5
        row = (xy[:, 1] - self.origin_px[1]) * self.scale - 0.5
        return row, col


def _polygons(geometry: Any) -> list[Any]:
    return list(geometry.geoms) if geometry.geom_type == "MultiPolygon" else [geometry]


def polygon_mask(geometry: Any, grid: Grid) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies in ``geometry`` (holes excluded)."""
    from skimage.draw import polygon

    mask = np.zeros(grid.shape, dtype=bool)
    for poly in _polygons(geometry):
        rr, cc = polygon(*grid.to_pixels(np.asarray(poly.exterior.coords)), shape=grid.shape)
        mask[rr, cc] = True
        for hole in poly.interiors:
            rr, cc = polygon(*grid.to_pixels(np.asarray(hole.coords)), shape=grid.shape)
            mask[rr, cc] = False
    return mask


def check_inside(annotations: Sequence[Annotation], width_px: float, height_px: float, source: str) -> None:
    """Refuse annotations whose level-0 bounds leave ``[0, width] x [0, height]``.

    Raises
    ------
    AnnotationOutsideImageError
        Naming ``source`` (the GeoJSON file), the feature index and the image size.
    """
    tol = EDGE_TOLERANCE_PX
    for a in annotations:
        x0, y0, x1, y1 = a.geometry.bounds
        if x0 < -tol or y0 < -tol or x1 > width_px + tol or y1 > height_px + tol:
            raise AnnotationOutsideImageError(
                f"{source}: feature {a.index} ({a.class_name}) spans x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} "
                f"outside the {width_px:.0f} x {height_px:.0f} px image; was it exported from another image "
                "or at another resolution? (coordinates must be level-0 pixels of this image)")


@dataclass(frozen=True)
class LabelImages:
    """Class labels (uint8) and instance ids (int32, 0 = none) on one grid."""

    labels: np.ndarray
    instances: np.ndarray


def rasterise(annotations: Sequence[Annotation], grid: Grid, classes: Sequence[str]) -> LabelImages:
    """Class mask and instance map of ``annotations`` on ``grid`` (conventions in the module docstring).

    Each polygon of a structure annotation (each part of a MultiPolygon) is one instance.
    Structures whose class is not in ``classes`` are an error of the caller (the reader checks
    them against ``--classes``).
    """
    index = {c: k + 1 for k, c in enumerate(classes)}
    rois = [a for a in annotations if a.is_roi]
    labels = np.zeros(grid.shape, dtype=np.uint8)
    instances = np.zeros(grid.shape, dtype=np.int32)
    next_id = 1
    for a in sorted((a for a in annotations if a.is_structure), key=lambda a: -a.geometry.area):
        for poly in _polygons(a.geometry):
            m = polygon_mask(poly, grid)
            if not m.any():
                continue
            labels[m], instances[m] = index[a.class_name], next_id
            next_id += 1
    for a in annotations:
        if a.is_ignore:
            m = polygon_mask(a.geometry, grid)
            labels[m], instances[m] = IGNORE_LABEL, 0
    if rois:
        inside = np.zeros(grid.shape, dtype=bool)
        for a in rois:
            inside |= polygon_mask(a.geometry, grid)
        labels[~inside], instances[~inside] = IGNORE_LABEL, 0
    return LabelImages(labels, instances)
