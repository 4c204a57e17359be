"""Segmentation and detection metrics: Dice, AJI, PQ, and point matching within a radius.

* Dice: pixel-level foreground overlap, ``2|P∩G| / (|P|+|G|)``.
* AJI (aggregated Jaccard index, Kumar et al. 2017): each ground-truth nucleus is paired with the
  prediction of highest IoU; intersections and unions are summed, and every prediction left
  unpaired adds its area to the union.
* PQ (panoptic quality, Kirillov et al. 2019): pairs with IoU > 0.5 are unique matches;
  ``PQ = sum(IoU of matches) / (TP + FP/2 + FN/2)`` = DQ x SQ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, inv = np.unique(labels, return_inverse=True)
    if uniq[0] != 0:
        uniq = np.concatenate([[0], uniq])
        inv = inv + 1
    return inv.reshape(labels.shape), len(uniq) - 1


def _overlaps(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (intersection (G+1, P+1), gt areas (G,), pred areas (P,)) with row/col 0 = background."""
    g, ng = _relabel(gt)
    p, npred = _relabel(pred)
    inter = np.bincount(g.ravel() * (npred + 1) + p.ravel(), minlength=(ng + 1) * (npred + 1))
    inter = inter.reshape(ng + 1, npred + 1)
    return inter, inter[1:].sum(axis=1), inter[:, 1:].sum(axis=0)


def dice(gt: np.ndarray, pred: np.ndarray) -> float:
    """Binary Dice of foreground (label > 0); 1.0 when both are empty."""
    a, b = gt > 0, pred > 0
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2 * (a & b).sum() / denom)


def aji(gt: np.ndarray, pred: np.ndarray) -> float:
    """Aggregated Jaccard index of two instance maps; 1.0 when both are empty."""
    inter, area_g, area_p = _overlaps(gt, pred)
    if len(area_g) == 0:
        return 1.0 if len(area_p) == 0 else 0.0
    inter = inter[1:, 1:].astype(np.int64)
    if inter.shape[1] == 0:
        return 0.0
    union = area_g[:, None] + area_p[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    best = iou.argmax(axis=1)
    has = iou[np.arange(len(area_g)), best] > 0
    rows = np.arange(len(area_g))
    c = inter[rows, best][has].sum()
    u = union[rows, best][has].sum() + area_g[~has].sum()
    used = np.zeros(len(area_p), dtype=bool)
    used[best[has]] = True
    u += area_p[~used].sum()
    return float(c / u) if u > 0 else 0.0


@dataclass(frozen=True)
class PQResult:
    """Panoptic quality and its parts."""

    pq: float
    dq: float
    sq: float
    tp: int
    fp: int
    fn: int


def panoptic_quality(gt: np.ndarray, pred: np.ndarray) -> PQResult:
    """Panoptic quality with unique matching at IoU > 0.5."""
    inter, area_g, area_p = _overlaps(gt, pred)
    inter = inter[1:, 1:].astype(np.int64)
    if inter.size:
        union = area_g[:, None] + area_p[None, :] - inter
        iou = inter / np.maximum(union, 1)
        match = iou > 0.5
        tp = int(match.sum())
        sum_iou = float(iou[match].sum())
    else:
        tp, sum_iou = 0, 0.0
    fp, fn = len(area_p) - tp, len(area_g) - tp
    denom = tp + 0.5 * fp + 0.5 * fn
    if denom == 0:
        return PQResult(1.0, 1.0, 1.0, 0, 0, 0)
    dq = tp / denom
    sq = sum_iou / tp if tp else 0.0
    return PQResult(dq * sq, dq, sq, tp, fp, fn)


def match_points(pred_xy: np.ndarray, gt_xy: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of points within ``radius`` minimising total distance (Hungarian).

    Returns
    -------
    pred_idx, gt_idx : ndarray of int
        Indices of matched pairs.
    """
    pred_xy = np.asarray(pred_xy, dtype=float).reshape(-1, 2)
    gt_xy = np.asarray(gt_xy, dtype=float).reshape(-1, 2)
    if not len(pred_xy) or not len(gt_xy):
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    d = cdist(pred_xy, gt_xy)
    big = radius * 1e3 + 1e6
    cost = np.where(d <= radius, d, big)
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] <= radius
    return r[ok], c[ok]


def detection_scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (NaN where undefined)."""
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def score_class_detection(
    pred_xy: np.ndarray,
    pred_class: np.ndarray,
    gt_xy: np.ndarray,
    gt_class: np.ndarray,
    target: int,
    radius: float,
    n_classes: int,
) -> tuple[dict[str, int], np.ndarray]:
    """Score detection of one class where some ground-truth points carry no class.

    All predictions (any class) are matched one-to-one to all ground-truth points. A prediction of
    ``target`` is a TP when matched to a ``target`` point, is ignored when matched to an
    unclassified point (``gt_class == -1``), and is an FP otherwise. A ``target`` point not matched
    to a ``target`` prediction is an FN.

    Returns
    -------
    counts : dict with ``tp``, ``fp``, ``fn``
    confusion : ndarray (n_classes + 1, n_classes + 1)
        Rows: ground-truth class (last row = no ground-truth point: unmatched prediction);
        columns: predicted class (last column = missed: ground-truth point with no prediction).
        Unclassified ground-truth points are left out.
    """
    pred_class = np.asarray(pred_class, dtype=int)
    gt_class = np.asarray(gt_class, dtype=int)
    pi, gi = match_points(pred_xy, gt_xy, radius)
    matched_pred = np.full(len(pred_class), -2)  # -2 = unmatched
    matched_pred[pi] = gt_class[gi]
    is_t = pred_class == target
    tp = int((is_t & (matched_pred == target)).sum())
    fp = int((is_t & (matched_pred != target) & (matched_pred != -1)).sum())
    fn = int((gt_class == target).sum() - tp)
    conf = np.zeros((n_classes + 1, n_classes + 1), dtype=int)
    lab = gt_class[gi] >= 0
    np.add.at(conf, (gt_class[gi][lab], pred_class[pi][lab]), 1)
    unmatched = matched_pred == -2
    np.add.at(conf, (np.full(unmatched.sum(), n_classes), pred_class[unmatched]), 1)
    gt_unmatched = np.ones(len(gt_class), dtype=bool)
    gt_unmatched[gi] = False
    miss = gt_unmatched & (gt_class >= 0)
    np.add.at(conf, (gt_class[miss], np.full(miss.sum(), n_classes)), 1)
    return {"tp": tp, "fp": fp, "fn": fn}, conf
