"""Metrics against hand-computed small cases."""

import numpy as np
import pytest

from immunodig.nuclei.evaluation import (
    aji,
    detection_scores,
    dice,
    match_points,
    panoptic_quality,
    score_class_detection,
)


def test_identical_maps_score_one():
    gt = np.zeros((6, 6), int)
    gt[0:2, 0:2] = 1
    gt[3:6, 3:6] = 2
    pred = np.where(gt == 1, 7, np.where(gt == 2, 3, 0))  # other ids, same shapes
    assert aji(gt, pred) == 1.0
    assert dice(gt, pred) == 1.0
    assert panoptic_quality(gt, pred).pq == 1.0


def test_hand_computed_case():
    # GT: nucleus A = 4 px (row 0, cols 0-3); nucleus B = 2 px (row 2, cols 0-1)
    gt = np.zeros((3, 4), int)
    gt[0, :] = 1
    gt[2, :2] = 2
    # prediction: P1 covers 3 px of A; P2 = 1 px of background (false positive)
    pred = np.zeros((3, 4), int)
    pred[0, :3] = 1
    pred[1, 3] = 2
    # Dice: 2*3 / (6 + 4) = 0.6
    assert dice(gt, pred) == pytest.approx(0.6)
    # AJI: A<->P1: I=3, U=4; B has no overlap: U += 2; P2 unused: U += 1 -> 3 / 7
    assert aji(gt, pred) == pytest.approx(3 / 7)
    # PQ: A-P1 IoU 0.75 > 0.5 -> TP=1, FP=1 (P2), FN=1 (B); PQ = 0.75 / (1 + 0.5 + 0.5)
    pq = panoptic_quality(gt, pred)
    assert (pq.tp, pq.fp, pq.fn) == (1, 1, 1)
    assert pq.pq == pytest.approx(0.375)
    assert pq.sq == pytest.approx(0.75)


def test_aji_split_prediction_penalised():
    gt = np.zeros((2, 4), int)
    gt[:, :] = 1
    pred = np.zeros((2, 4), int)
    pred[:, :2], pred[:, 2:] = 1, 2  # one nucleus split in two halves
    # best match I=4, U=8; the other half (4 px) unused -> U=12: 4/12
    assert aji(gt, pred) == pytest.approx(1 / 3)
    assert panoptic_quality(gt, pred).tp == 0  # IoU exactly 0.5 is not a match


def test_empty_cases():
    z = np.zeros((4, 4), int)
    assert aji(z, z) == 1.0 and dice(z, z) == 1.0 and panoptic_quality(z, z).pq == 1.0
    one = z.copy()
    one[1, 1] = 1
    assert aji(one, z) == 0.0 and aji(z, one) == 0.0


def test_match_points_one_to_one_within_radius():
    pred = np.array([[0, 0], [10, 0], [50, 50]], float)
    gt = np.array([[1, 0], [2, 0], [100, 100]], float)
    pi, gi = match_points(pred, gt, radius=5)
    pairs = set(zip(pi.tolist(), gi.tolist()))
    assert pairs == {(0, 0)} or pairs == {(0, 1)}  # pred 1 at distance 8-9 is too far


def test_class_detection_ignores_unlabelled_matches():
    gt = np.array([[0, 0], [20, 0], [40, 0], [60, 0]], float)
    gt_cls = np.array([1, -1, 0, 1])  # lymph, unlabelled, epithelial, lymph
    pred = np.array([[1, 0], [21, 0], [41, 0], [90, 0]], float)
    pred_cls = np.array([1, 1, 1, 1])
    counts, conf = score_class_detection(pred, pred_cls, gt, gt_cls, target=1, radius=5, n_classes=4)
    # TP: pred0; ignored: pred1 (unlabelled); FP: pred2 (epithelial), pred3 (no match); FN: gt3
    assert counts == {"tp": 1, "fp": 2, "fn": 1}
    assert conf[1, 1] == 1 and conf[0, 1] == 1 and conf[4, 1] == 1 and conf[1, 4] == 1
    s = detection_scores(**counts)
    assert s["f1"] == pytest.approx(2 / 5)
