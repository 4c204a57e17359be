"""Scoring a segmenter on MoNuSeg-style instance annotations (Dice, AJI, PQ per image + overall)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from immunodig.config import BuildConfig
from immunodig.nuclei.datasets import InstanceImage
from immunodig.nuclei.evaluation import aji, dice, panoptic_quality


def evaluate_segmenter(images: list[InstanceImage], segmenter: Any, cfg: BuildConfig | None = None) -> dict[str, Any]:
    """Segment each image and score it.

    With ``cfg``, each image runs through the nuclei stage of ``build-features`` as a slide
    (:func:`immunodig.nuclei.image_slide.image_nuclei`: read at ``cfg.nuclei_mpp``, blocks, edge
    strip, de-duplication) and the kept instances, brought back to the annotation grid (nearest
    neighbour), are scored; without, ``segmenter.segment`` runs on the image at its own mpp (the
    backend alone, as the parameter tuning scores it).

    Overall values are means over images (the MoNuSeg challenge convention for AJI), with
    ``pq_pooled`` computed from pooled TP/FP/FN and IoU sums as well.
    """
    rows = []
    tp = fp = fn = 0
    iou_sum = 0.0
    for im in images:
        t0 = time.perf_counter()
        if cfg is None:
            pred = segmenter.segment(im.rgb, im.mpp)
        else:
            from immunodig.nuclei.image_slide import image_nuclei
            from immunodig.nuclei.rule_classifier import RuleCellClassifier

            pred = image_nuclei(im.rgb, im.mpp, cfg, segmenter, RuleCellClassifier(), with_labels=True)["labels"]
        seconds = time.perf_counter() - t0
        pq = panoptic_quality(im.instances, pred)
        tp, fp, fn = tp + pq.tp, fp + pq.fp, fn + pq.fn
        iou_sum += pq.sq * pq.tp
        rows.append({
            "image_id": im.image_id, "mpp": im.mpp, "aji": aji(im.instances, pred), "dice": dice(im.instances, pred),
            "pq": pq.pq, "dq": pq.dq, "sq": pq.sq, "n_true": int(len(np.unique(im.instances)) - 1),
            "n_pred": int(pred.max()), "seconds": seconds,
        })
    denom = tp + 0.5 * fp + 0.5 * fn
    return {
        "backend": getattr(segmenter, "name", type(segmenter).__name__),
        "n_images": len(rows),
        "path": "segmenter" if cfg is None else f"nuclei stage at {cfg.nuclei_mpp:g} um/px",
        "aji": float(np.mean([r["aji"] for r in rows])),
        "dice": float(np.mean([r["dice"] for r in rows])),
        "pq": float(np.mean([r["pq"] for r in rows])),
        "pq_pooled": float(iou_sum / denom) if denom else float("nan"),
        "per_image": rows,
    }
