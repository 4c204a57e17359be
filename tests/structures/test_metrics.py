"""Segmentation scores against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.structures.metrics import SegmentationScores

X = 255  # ignored


def _case():
    true = np.array([[1, 1, 0, 0, 0, 0],
                     [1, 1, 0, 0, 1, 1],
                     [0, 0, 0, 0, 1, 1],
                     [0, 2, 0, 0, X, X]], np.uint8)
    true_inst = np.array([[1, 1, 0, 0, 0, 0],
                          [1, 1, 0, 0, 2, 2],
                          [0, 0, 0, 0, 2, 2],
                          [0, 3, 0, 0, 0, 0]], np.int32)
    pred = np.array([[1, 1, 1, 0, 0, 0],
                     [1, 1, 0, 0, 1, 0],
                     [0, 0, 0, 0, 0, 0],
                     [1, 0, 0, 0, 1, 0]], np.uint8)
    pred_inst = np.array([[1, 1, 1, 0, 0, 0],
                          [1, 1, 0, 0, 2, 0],
                          [0, 0, 0, 0, 0, 0],
                          [3, 0, 0, 0, 4, 0]], np.int32)
    return true, true_inst, pred, pred_inst


def test_pixel_and_object_scores_match_hand_counts():
    s = SegmentationScores(["a", "b"])
    row = s.add("img", *_case())
    out = s.summary()
    a, b = out["per_class"]["a"], out["per_class"]["b"]
    # class a: TP 5 px (object 1 + one px of object 2), FP 2 ((0,2), (3,0)), FN 3; (3,4) is ignored
    assert (a["pixels_tp"], a["pixels_fp"], a["pixels_fn"]) == (5, 2, 3)
    assert a["dice"] == pytest.approx(10 / 15) and a["iou"] == pytest.approx(5 / 10)
    # objects: pred 1 matches true 1 (IoU 4/5); pred 2 (IoU 1/4) and pred 3 are FP; true 2 is FN
    assert (a["objects_tp"], a["objects_fp"], a["objects_fn"]) == (1, 2, 1)
    assert a["object_f1"] == pytest.approx(2 / 5)
    assert a["object_precision"] == pytest.approx(1 / 3) and a["object_recall"] == pytest.approx(1 / 2)
    assert b["dice"] == 0.0 and b["object_f1"] == 0.0
    assert out["dice"] == pytest.approx((10 / 15 + 0) / 2)
    assert row["dice"] == pytest.approx(out["dice"])


def test_counts_pool_over_images_and_folds():
    s = SegmentationScores(["a", "b"])
    s.add("x", *_case())
    other = SegmentationScores(["a", "b"])
    true, true_inst, _, _ = _case()
    other.add("y", true, true_inst, true, true_inst)  # perfect
    s.extend(other)
    a = s.summary()["per_class"]["a"]
    assert (a["pixels_tp"], a["pixels_fp"], a["pixels_fn"]) == (5 + 8, 2, 3)
    assert a["dice"] == pytest.approx(26 / 31)
    assert s.summary()["dice_per_image"][1] == pytest.approx(1.0)


def test_a_class_absent_everywhere_is_left_out_of_the_mean():
    s = SegmentationScores(["a", "b"])
    z = np.zeros((4, 4), np.uint8)
    t = z.copy()
    t[:2, :2] = 1
    s.add("x", t, t.astype(np.int32), t, t.astype(np.int32))
    out = s.summary()
    assert np.isnan(out["per_class"]["b"]["dice"]) and out["dice"] == 1.0
