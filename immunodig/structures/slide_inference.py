"""A structure segmenter over a whole slide: blocks over tissue, stitched, one polygon per structure.

The slide is cut, at the model's mpp, into square blocks of ``block_px`` (only blocks with
tissue in the mask are read). Each block is read with a halo of half a model tile on every side
and predicted with the blended tiles of :class:`~immunodig.structures.inference.StructureSegmenter`;
only its core is kept, so every pixel is predicted with context on all sides and the label image
has no seams. Objects are vectorised per block (:mod:`immunodig.structures.vectorise`); those
touching an inner block edge are merged with their neighbours' of the same class (they share
pixel edges exactly), so a structure across blocks is one polygon. Memory stays that of one
block plus the polygons.

Table (``structures.parquet``, one row per structure): ``structure_id``, ``class``,
``area_um2``, ``perimeter_um``, ``x_um``, ``y_um`` (centroid), ``x_px``, ``y_px`` (level-0
centroid), ``probability`` (mean winning-class probability over its pixels), ``geometry_wkb``
(level-0 pixel polygon, WKB).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from immunodig.structures.inference import StructureSegmenter
from immunodig.structures.rasterise import Grid
from immunodig.structures.vectorise import instance_polygons, to_level0

#: Columns of the structures table, in order.
STRUCTURE_COLUMNS: tuple[str, ...] = ("structure_id", "class", "area_um2", "perimeter_um", "x_um", "y_um",
                                      "x_px", "y_px", "probability", "geometry_wkb")
#: Default block edge at the model's mpp.
BLOCK_PX = 1024


def _has_tissue(mask: Any, x0_px: float, y0_px: float, x1_px: float, y1_px: float, slide_mpp: float) -> bool:
    if mask is None:
        return True
    f = slide_mpp / mask.mpp
    r0, r1 = int(y0_px * f), int(math.ceil(y1_px * f))
    c0, c1 = int(x0_px * f), int(math.ceil(x1_px * f))
    return bool(mask.mask[r0:max(r1, r0 + 1), c0:max(c1, c0 + 1)].any())


def _block_objects(seg: StructureSegmenter, slide: Any, bx: int, by: int, bw: int, bh: int,
                   scale: float, halo: int) -> list[dict[str, Any]]:
    rgb = slide.read((bx - halo) / scale, (by - halo) / scale, (bw + 2 * halo, bh + 2 * halo), seg.mpp)
    labels, prob = seg.predict(rgb)
    core = (slice(halo, halo + bh), slice(halo, halo + bw))
    labels, prob = labels[core], prob[core]
    inst = seg.objects(labels)
    grid = Grid((bx / scale, by / scale), scale, labels.shape)
    out = []
    for i, poly in instance_polygons(inst).items():
        pix = inst == i
        rows, cols = np.nonzero(pix)
        out.append({"class": seg.classes[int(labels[rows[0], cols[0]]) - 1], "geometry": to_level0(poly, grid),
                    "prob_sum": float(prob[pix].sum()), "n_px": int(pix.sum()),
                    "edge": bool(rows.min() == 0 or cols.min() == 0 or rows.max() == bh - 1 or cols.max() == bw - 1)})
    return out


def _merge_edges(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Union the block-edge objects of each class that touch (module docstring)."""
    from shapely import STRtree, unary_union

    inner = [o for o in objects if not o["edge"]]
    for cls in sorted({o["class"] for o in objects if o["edge"]}):
        parts = [o for o in objects if o["edge"] and o["class"] == cls]
        merged = unary_union([o["geometry"] for o in parts])
        pieces = list(merged.geoms) if merged.geom_type == "MultiPolygon" else [merged]
        tree = STRtree([o["geometry"] for o in parts])
        for piece in pieces:
            members = [parts[j] for j in tree.query(piece, predicate="intersects")]
            inner.append({"class": cls, "geometry": piece, "edge": False,
                          "prob_sum": sum(m["prob_sum"] for m in members), "n_px": sum(m["n_px"] for m in members)})
    return inner


def segment_slide_structures(slide: Any, segmenter: StructureSegmenter, tissue_mask: Any = None,
                             block_px: int = BLOCK_PX) -> pl.DataFrame:
    """Structures of a whole slide (module docstring).

    Parameters
    ----------
    slide : immunodig.slides.Slide
    segmenter : StructureSegmenter
    tissue_mask : immunodig.slides.tissue_mask.TissueMask, optional
        Blocks without tissue are skipped (``None``: every block is read).
    block_px : int
        Block edge at the model's mpp.
    """
    scale = slide.mpp / segmenter.mpp
    w, h = (int(math.floor(d * scale)) for d in slide.dimensions)
    halo = segmenter.tile_px // 2
    objects: list[dict[str, Any]] = []
    for by in range(0, h, block_px):
        for bx in range(0, w, block_px):
            bw, bh = min(block_px, w - bx), min(block_px, h - by)
            if _has_tissue(tissue_mask, bx / scale, by / scale, (bx + bw) / scale, (by + bh) / scale, slide.mpp):
                objects.extend(_block_objects(segmenter, slide, bx, by, bw, bh, scale, halo))
    return structures_table(_merge_edges(objects), slide.mpp)


def structures_table(objects: list[dict[str, Any]], slide_mpp: float) -> pl.DataFrame:
    """The structures table (module docstring) of merged objects, ordered by position."""
    from shapely import to_wkb

    rows = []
    for o in objects:
        g = o["geometry"]
        c = g.centroid
        rows.append({"class": o["class"], "area_um2": g.area * slide_mpp ** 2, "perimeter_um": g.length * slide_mpp,
                     "x_um": c.x * slide_mpp, "y_um": c.y * slide_mpp, "x_px": c.x, "y_px": c.y,
                     "probability": o["prob_sum"] / max(o["n_px"], 1), "geometry_wkb": to_wkb(g)})
    rows.sort(key=lambda r: (r["y_px"], r["x_px"]))
    schema = {"structure_id": pl.Int64, "class": pl.Utf8, "area_um2": pl.Float64, "perimeter_um": pl.Float64,
              "x_um": pl.Float64, "y_um": pl.Float64, "x_px": pl.Float64, "y_px": pl.Float64,
              "probability": pl.Float64, "geometry_wkb": pl.Binary}
    return pl.DataFrame([{"structure_id": i + 1, **r} for i, r in enumerate(rows)], schema=schema)
