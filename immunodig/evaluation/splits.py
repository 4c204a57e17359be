"""Repeated, stratified, patient-grouped cross-validation splits.

Splits are a function of the patient identifiers, the stratification labels and the seed only:
not of the row order, the features or the model. Two models or two feature sets evaluated with
the same seed on the same patients therefore see identical train/test partitions, which is what
makes their comparison *paired*.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from immunodig.errors import ValidationError


@dataclass(frozen=True)
class Split:
    """One outer fold: row indices (into the caller's arrays) of training and test rows."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def _patient_strata(ids: np.ndarray, strata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique patients (sorted) and one stratum per patient (the max over its rows)."""
    uniq, inverse = np.unique(ids, return_inverse=True)
    per_patient = np.zeros(len(uniq), dtype=int)
    np.maximum.at(per_patient, inverse, strata.astype(int))
    return uniq, per_patient


def grouped_splits(ids, strata, n_splits: int = 5, n_repeats: int = 5,
                   seed: int = 0) -> list[Split]:
    """Return ``n_repeats`` x ``n_splits`` outer folds, grouped by patient and stratified.

    Parameters
    ----------
    ids : array-like
        Patient identifier of each row; rows sharing it are never split across train and test.
    strata : array-like of int
        Stratification label of each row (the outcome, or the event indicator for survival).
    n_splits : int
        Folds per repeat.
    n_repeats : int
        Independent re-partitions.
    seed : int
        Seed of the whole scheme.
    """
    ids = np.asarray(ids).astype(str)
    strata = np.asarray(strata).astype(int)
    uniq, pat_strata = _patient_strata(ids, strata)
    counts = np.bincount(pat_strata)
    if len(uniq) < n_splits or counts[counts > 0].min() < n_splits:
        raise ValidationError("cross-validation", [{
            "row": None, "column": "outcome",
            "check": f"{len(uniq)} patients, smallest outcome class has "
                     f"{counts[counts > 0].min()} patients: fewer than n_splits={n_splits}; "
                     "lower --folds"}])
    rng = np.random.default_rng(seed)
    states = rng.integers(0, 2**31 - 1, size=n_repeats)
    pos = np.searchsorted(uniq, ids)  # row -> patient index
    splits = []
    for r in range(n_repeats):
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=int(states[r]))
        pidx = np.arange(len(uniq))
        for f, (_, test_p) in enumerate(cv.split(pidx, pat_strata, groups=pidx)):
            is_test = np.isin(pos, test_p)
            splits.append(Split(r, f, np.flatnonzero(~is_test), np.flatnonzero(is_test)))
    return splits


def splits_key(ids, splits: list[Split]) -> str:
    """Fingerprint of a split scheme: equal keys mean identical patient partitions."""
    ids = np.asarray(ids).astype(str)
    h = hashlib.sha256()
    for s in splits:
        h.update(f"{s.repeat}:{s.fold}:".encode())
        h.update("\x1f".join(sorted(set(ids[s.test]))).encode())
    return h.hexdigest()[:16]
