"""Scores of a structure segmentation: pixel Dice and IoU, object precision, recall and F1.

Per class, over every scored image together (pixels marked ignore, 255, left out):

* pixel Dice ``2 TP / (2 TP + FP + FN)`` and IoU ``TP / (TP + FP + FN)``, from pooled pixel counts;
* objects: a predicted object matches a true object of the class when their IoU exceeds 0.5
  (such matches are unique; :func:`immunodig.nuclei.evaluation.panoptic_quality`); precision,
  recall and F1 from pooled matched / unmatched counts. Predicted objects are cut to the scored
  pixels first.

Overall ``dice`` and ``iou`` are the means over classes (each class counts once, however large);
``dice_per_image`` lists the mean-over-classes Dice of each image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from immunodig.nuclei.evaluation import detection_scores, panoptic_quality
from immunodig.structures.rasterise import IGNORE_LABEL


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


@dataclass
class SegmentationScores:
    """Running counts per class (add images with :meth:`add`, read with :meth:`summary`)."""

    classes: Sequence[str]
    pixels: dict[str, np.ndarray] = field(default_factory=dict)  # class -> [tp, fp, fn]
    objects: dict[str, np.ndarray] = field(default_factory=dict)  # class -> [tp, fp, fn]
    per_image: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for c in self.classes:
            self.pixels.setdefault(c, np.zeros(3, np.int64))
            self.objects.setdefault(c, np.zeros(3, np.int64))

    def add(self, image_id: str, true_labels: np.ndarray, true_instances: np.ndarray,
            pred_labels: np.ndarray, pred_instances: np.ndarray) -> dict[str, Any]:
        """Score one image (all arrays on one grid); returns its row of :attr:`per_image`."""
        valid = true_labels != IGNORE_LABEL
        row: dict[str, Any] = {"image_id": image_id, "scored_px": int(valid.sum())}
        dices = []
        for k, c in enumerate(self.classes, start=1):
            t, p = (true_labels == k) & valid, (pred_labels == k) & valid
            tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
            self.pixels[c] += (tp, fp, fn)
            gt_obj = np.where(t, true_instances, 0)
            pr_obj = np.where(p, pred_instances, 0)
            pq = panoptic_quality(gt_obj, pr_obj)
            self.objects[c] += (pq.tp, pq.fp, pq.fn)
            d = _ratio(2 * tp, 2 * tp + fp + fn)
            row[f"dice_{c}"] = d
            dices.append(d)
        row["dice"] = float(np.nanmean(dices)) if not np.all(np.isnan(dices)) else float("nan")
        self.per_image.append(row)
        return row

    def extend(self, other: "SegmentationScores") -> None:
        """Add another set of counts (same classes) to these."""
        for c in self.classes:
            self.pixels[c] += other.pixels[c]
            self.objects[c] += other.objects[c]
        self.per_image.extend(other.per_image)

    def summary(self) -> dict[str, Any]:
        """``dice``, ``iou``, ``per_class {name: {dice, iou, object_f1, object_precision,
        object_recall, pixels_tp/fp/fn, objects_tp/fp/fn}}``, ``dice_per_image``, ``per_image``."""
        per_class = {}
        for c in self.classes:
            tp, fp, fn = (int(v) for v in self.pixels[c])
            det = detection_scores(*(int(v) for v in self.objects[c]))
            per_class[c] = {
                "dice": _ratio(2 * tp, 2 * tp + fp + fn), "iou": _ratio(tp, tp + fp + fn),
                "object_f1": det["f1"], "object_precision": det["precision"], "object_recall": det["recall"],
                "pixels_tp": tp, "pixels_fp": fp, "pixels_fn": fn,
                "objects_tp": det["tp"], "objects_fp": det["fp"], "objects_fn": det["fn"],
            }

        def mean(key: str) -> float:
            vals = [v[key] for v in per_class.values() if not np.isnan(v[key])]
            return float(np.mean(vals)) if vals else float("nan")

        return {"dice": mean("dice"), "iou": mean("iou"), "object_f1": mean("object_f1"),
                "per_class": per_class, "n_images": len(self.per_image),
                "dice_per_image": [r["dice"] for r in self.per_image], "per_image": self.per_image}
