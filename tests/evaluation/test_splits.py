"""Outer splits: grouped by patient, stratified, and a function of (ids, labels, seed) only."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.errors import ValidationError
from immunodig.evaluation import grouped_splits, splits_key


def _multi_slide(n_patients=40, seed=0):
    rng = np.random.default_rng(seed)
    n_slides = rng.integers(1, 4, n_patients)
    ids = np.repeat([f"P{i}" for i in range(n_patients)], n_slides)
    label = np.repeat((rng.random(n_patients) < 0.3).astype(int), n_slides)
    return ids, label


def test_no_patient_in_train_and_test():
    ids, y = _multi_slide()
    splits = grouped_splits(ids, y, n_splits=4, n_repeats=3, seed=1)
    assert len(splits) == 12
    for s in splits:
        assert not set(ids[s.train]) & set(ids[s.test])
    for r in range(3):  # every row tested exactly once per repeat
        tested = np.concatenate([s.test for s in splits if s.repeat == r])
        assert sorted(tested) == list(range(len(ids)))


def test_stratified_folds_keep_prevalence():
    ids = np.array([f"P{i}" for i in range(100)])
    y = (np.arange(100) < 30).astype(int)
    for s in grouped_splits(ids, y, n_splits=5, n_repeats=2, seed=0):
        assert y[s.test].sum() == 6


def test_same_seed_same_splits_regardless_of_row_order():
    ids, y = _multi_slide()
    a = grouped_splits(ids, y, 4, 2, seed=7)
    perm = np.random.default_rng(0).permutation(len(ids))
    b = grouped_splits(ids[perm], y[perm], 4, 2, seed=7)
    assert splits_key(ids, a) == splits_key(ids[perm], b)
    for sa, sb in zip(a, b):
        assert set(ids[sa.test]) == set(ids[perm][sb.test])
    c = grouped_splits(ids, y, 4, 2, seed=8)
    assert splits_key(ids, c) != splits_key(ids, a)


def test_too_few_events_for_folds_is_a_clear_error():
    ids = np.array([f"P{i}" for i in range(20)])
    y = np.array([1, 1] + [0] * 18)
    with pytest.raises(ValidationError, match="lower --folds"):
        grouped_splits(ids, y, n_splits=5)
