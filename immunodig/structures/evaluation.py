"""Scoring structure segmenters on annotated folders, and grouped cross-validation.

:func:`evaluate_folder` runs a model file (immunodig's, or the lab's TorchScript / state dict
with a side file) on every annotated image or slide region and scores it
(:mod:`immunodig.structures.metrics`). :func:`cross_validate` trains ``k`` models, each blind to
one fold of images (or slides; folds grouped so no image is on both sides), and scores every
image by the model that did not see it; scores are pooled over folds and given per fold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from immunodig.errors import ConfigError, DatasetError, MppMismatchError
from immunodig.structures.dataset import AnnotatedRegion, load_annotated_folder
from immunodig.structures.metrics import SegmentationScores
from immunodig.structures.training import SegmenterTrainingParams, score_regions, train_segmenter

#: Relative tolerance between a model's mpp and the --mpp asked for.
MPP_TOLERANCE = 0.02


def evaluate_folder(directory: str | Path, model: str | Path, mpp: float | None = None,
                    image_mpp: float | None = None) -> dict[str, Any]:
    """Score ``model`` on an annotated folder; returns :meth:`SegmentationScores.summary` plus
    ``model``, ``mpp``, ``classes`` and ``seconds``.

    Raises
    ------
    MppMismatchError
        ``mpp`` differs from the model's ``input_mpp``.
    """
    import time

    from immunodig.structures.inference import StructureSegmenter

    seg = StructureSegmenter(model)
    if mpp is not None and abs(mpp - seg.mpp) > MPP_TOLERANCE * seg.mpp:
        raise MppMismatchError(f"{model}: the model works at {seg.mpp:g} µm/px but --mpp {mpp:g} was given; "
                               f"pass --mpp {seg.mpp:g} (images are resampled to it)")
    regions, classes = load_annotated_folder(directory, seg.mpp, seg.classes, image_mpp)
    t0 = time.perf_counter()
    scores = score_regions(seg, regions, classes)
    return {"model": str(model), "mpp": seg.mpp, "classes": classes, **scores.summary(),
            "seconds": time.perf_counter() - t0}


def grouped_folds(groups: Sequence[str], k: int, seed: int) -> list[list[str]]:
    """``k`` folds of distinct group names (shuffled with ``seed``, dealt round robin)."""
    names = sorted(set(groups))
    if k < 2 or k > len(names):
        raise ConfigError(f"--cv {k}: need 2 <= k <= the number of images or slides ({len(names)})")
    order = np.random.default_rng(seed).permutation(names).tolist()
    return [sorted(order[i::k]) for i in range(k)]


def cross_validate(regions: Sequence[AnnotatedRegion], classes: Sequence[str], mpp: float, k: int,
                   params: SegmenterTrainingParams | None = None,
                   log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Grouped ``k``-fold cross-validation (module docstring); pooled summary plus ``cv``
    (``k``, ``scheme``, ``folds`` with each fold's test images, scores and training epochs)."""
    from immunodig.structures.inference import StructureSegmenter

    p = params or SegmenterTrainingParams()
    folds = grouped_folds([r.group for r in regions], k, p.seed)
    pooled = SegmentationScores(list(classes))
    fold_rows = []
    for i, test in enumerate(folds):
        train = [r for r in regions if r.group not in test]
        held = [r for r in regions if r.group in test]
        if not train:
            raise DatasetError("a cross-validation fold has no training image")
        if log:
            log(f"fold {i + 1}/{k}: test {', '.join(test)}")
        model, info = train_segmenter(train, classes, mpp, p, log=log)
        seg = StructureSegmenter(model)
        fold_scores = score_regions(seg, held, classes)
        pooled.extend(fold_scores)
        fold = fold_scores.summary()
        fold_rows.append({"fold": i, "test_images": test, "dice": fold["dice"], "iou": fold["iou"],
                          "per_class": fold["per_class"], "best_epoch": info["best_epoch"],
                          "train_seconds": round(info["seconds"], 1), "validation": info["validation"]})
    out = pooled.summary()
    out["cv"] = {"k": k, "scheme": "grouped by image/slide: each image scored by the model that did not see it",
                 "folds": fold_rows, "dice_fold_mean": float(np.mean([f["dice"] for f in fold_rows]))}
    return out
