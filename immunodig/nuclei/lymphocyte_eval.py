"""Scoring lymphocyte (inflammatory-cell) detection on CRCHistoPhenotypes-style point annotations."""

from __future__ import annotations

from typing import Any

import numpy as np

from immunodig.config import BuildConfig
from immunodig.nuclei.datasets import CRC_CLASSES, PointImage
from immunodig.nuclei.evaluation import detection_scores, score_class_detection

#: Match radius between a predicted centre and an annotated centre (6 µm = 11 px at 0.55 µm/px).
MATCH_RADIUS_UM = 6.0
#: Our class names in CRCHistoPhenotypes label order.
_OUR_NAMES = ("epithelial", "lymphocyte", "fibroblast", "other")
TARGET = 1  # "inflammatory" == lymphocyte


def predict_cells(
    image: PointImage, detector: Any = None, segmenter: Any = None, cfg: BuildConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted centres (x, y px) and class indices (``CRC_CLASSES`` order) for one image.

    With only ``detector``, nuclei are its own detections (``detect``: peaks of the FCN's map for a
    :class:`CellNetClassifier`, classical segmentation for the default classifier); with a
    ``segmenter`` too, nuclei come from the nuclei stage of ``build-features`` run on the image
    as a slide (:func:`immunodig.nuclei.image_slide.image_nuclei`: read at ``cfg.nuclei_mpp``,
    blocks, overlap, edge strip, de-duplication; ``cfg`` = ``BuildConfig()`` when ``None``),
    segmented by ``segmenter`` and classified by ``detector``.
    """
    if segmenter is None:
        xy, cls, _ = detector.detect(image.rgb, image.mpp)
        return xy, class_indices(cls)
    from immunodig.nuclei.image_slide import image_nuclei

    res = image_nuclei(image.rgb, image.mpp, cfg or BuildConfig(), segmenter, detector)
    return res["xy_px"], class_indices(res["cell_class"])


def class_indices(cell_classes: Any) -> np.ndarray:
    """Our cell-class names -> ``CRC_CLASSES`` indices (int array)."""
    return np.array([_OUR_NAMES.index(c) for c in cell_classes], dtype=int)


def evaluate_lymphocytes(
    images: list[PointImage],
    detector: Any,
    segmenter: Any = None,
    radius_um: float = MATCH_RADIUS_UM,
    cfg: BuildConfig | None = None,
) -> dict[str, Any]:
    """Inflammatory-cell precision / recall / F1 (pooled counts) and the class confusion.

    With a ``segmenter``, each image runs through the nuclei stage of ``build-features``
    (:func:`predict_cells`).

    A predicted lymphocyte matched to a nucleus marked for detection without a class label is
    neither a true nor a false positive (the dataset's intent).
    """
    total = np.zeros(3, dtype=int)
    conf = np.zeros((len(CRC_CLASSES) + 1, len(CRC_CLASSES) + 1), dtype=int)
    per_image = []
    for im in images:
        xy, idx = predict_cells(im, detector, segmenter, cfg)
        counts, c = score_class_detection(
            xy, idx, im.points_xy, im.labels, TARGET, radius_um / im.mpp, len(CRC_CLASSES)
        )
        conf += c
        total += [counts["tp"], counts["fp"], counts["fn"]]
        per_image.append(
            {
                "image_id": im.image_id,
                **detection_scores(counts["tp"], counts["fp"], counts["fn"]),
                "n_pred_lymphocytes": int((idx == TARGET).sum()),
            }
        )
    names = [*_OUR_NAMES]
    return {
        **detection_scores(*map(int, total)),
        "target_class": "inflammatory (lymphocyte)",
        "match_radius_um": radius_um,
        "confusion": {
            "rows_ground_truth": [*CRC_CLASSES, "no_annotation"],
            "columns_predicted": [*names, "missed"],
            "counts": conf.tolist(),
        },
        "per_image": per_image,
    }
