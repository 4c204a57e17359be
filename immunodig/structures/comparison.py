"""Predicted structures of a whole slide against reference polygons: counts, areas, matched objects.

Both sides are lists of ``(class name, level-0 polygon)``; objects smaller than ``min_area_um2``
are left out of both. Per class: the number and total area of reference and predicted objects
and their ratios (predicted / reference), and objects matched one to one: a pair of the same class
qualifies when its IoU is at least ``iou_threshold`` or the predicted centroid lies inside the
reference polygon; qualifying pairs are taken greedily by decreasing IoU. Recall = matched /
reference objects, precision = matched / predicted objects.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import polars as pl

#: Default IoU at which a predicted object matches a reference object.
IOU_THRESHOLD = 0.5


def table_structures(table: pl.DataFrame) -> list[tuple[str, Any]]:
    """``(class, polygon)`` of a ``structures.parquet`` table."""
    from shapely import from_wkb

    return list(zip(table["class"].to_list(), from_wkb(table["geometry_wkb"].to_list())))


def _match(ref: Sequence[Any], pred: Sequence[Any], iou_threshold: float) -> list[tuple[int, int, float]]:
    from shapely import STRtree

    if not ref or not pred:
        return []
    tree = STRtree(pred)
    pairs = []
    for i, r in enumerate(ref):
        for j in tree.query(r, predicate="intersects"):
            p = pred[j]
            inter = r.intersection(p).area
            iou = inter / (r.area + p.area - inter)
            if iou >= iou_threshold or r.contains(p.centroid):
                pairs.append((iou, i, int(j)))
    used_r, used_p, out = set(), set(), []
    for iou, i, j in sorted(pairs, reverse=True):
        if i not in used_r and j not in used_p:
            used_r.add(i)
            used_p.add(j)
            out.append((i, j, iou))
    return out


def compare_structures(reference: Iterable[tuple[str, Any]], predicted: Iterable[tuple[str, Any]],
                       slide_mpp: float, classes: Sequence[str], min_area_um2: float = 0.0,
                       iou_threshold: float = IOU_THRESHOLD) -> dict[str, dict[str, float]]:
    """Per-class comparison (module docstring).

    Returns
    -------
    dict
        ``{class: {n_reference, n_predicted, count_ratio, area_reference_mm2, area_predicted_mm2,
        area_ratio, matched, recall, precision, matched_iou_mean}}`` (ratios ``nan`` without a
        reference object).
    """
    px_um2 = slide_mpp ** 2
    min_px = min_area_um2 / px_um2
    reference, predicted = list(reference), list(predicted)
    out = {}
    for cls in classes:
        ref = [g for c, g in reference if c == cls and g.area >= min_px]
        pred = [g for c, g in predicted if c == cls and g.area >= min_px]
        matches = _match(ref, pred, iou_threshold)
        a_ref = sum(g.area for g in ref) * px_um2 * 1e-6
        a_pred = sum(g.area for g in pred) * px_um2 * 1e-6
        nan = float("nan")
        out[cls] = {"n_reference": len(ref), "n_predicted": len(pred),
                    "count_ratio": len(pred) / len(ref) if ref else nan,
                    "area_reference_mm2": a_ref, "area_predicted_mm2": a_pred,
                    "area_ratio": a_pred / a_ref if a_ref else nan,
                    "matched": len(matches),
                    "recall": len(matches) / len(ref) if ref else nan,
                    "precision": len(matches) / len(pred) if pred else nan,
                    "matched_iou_mean": sum(m[2] for m in matches) / len(matches) if matches else nan}
    return out


def pool_comparisons(per_slide: Sequence[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Sum the counts and areas of several slides' comparisons and recompute the ratios."""
    out = {}
    for cls in per_slide[0] if per_slide else []:
        s = {k: sum(d[cls][k] for d in per_slide)
             for k in ("n_reference", "n_predicted", "area_reference_mm2", "area_predicted_mm2", "matched")}
        nan = float("nan")
        iou = [d[cls]["matched_iou_mean"] * d[cls]["matched"] for d in per_slide if d[cls]["matched"]]
        out[cls] = {**s, "count_ratio": s["n_predicted"] / s["n_reference"] if s["n_reference"] else nan,
                    "area_ratio": (s["area_predicted_mm2"] / s["area_reference_mm2"]
                                   if s["area_reference_mm2"] else nan),
                    "recall": s["matched"] / s["n_reference"] if s["n_reference"] else nan,
                    "precision": s["matched"] / s["n_predicted"] if s["n_predicted"] else nan,
                    "matched_iou_mean": sum(iou) / s["matched"] if s["matched"] else nan}
    return out
