"""Out-of-fold predictions made outside immunodig, scored on the package's own splits.

A model trained elsewhere (a GPU cluster, another framework) is compared with the package's
models on identical patient partitions: :func:`splits_table` exports the outer folds that
:func:`immunodig.evaluation.nested_cv.nested_cross_validate` uses for the same patients, outcome
and seed (with their ``splits_key``); the other tool trains on each fold's training patients and
predicts its test patients; :func:`score_oof_predictions` checks that every patient was
predicted once per repeat, in the fold the splits assign, and returns a
:class:`~immunodig.evaluation.nested_cv.CVResult`, so every metric, interval, figure and paired
comparison applies. Whether the other tool really kept test patients out of training (and tuned
inside the training folds) cannot be checked here: it is the user's statement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from immunodig.errors import ValidationError
from immunodig.evaluation.nested_cv import CVResult, check_one_outcome_per_patient, outcome_strata
from immunodig.evaluation.splits import grouped_splits, splits_key

#: Columns of an out-of-fold prediction file (``train_cut`` optional).
OOF_COLUMNS: tuple[str, ...] = ("patient_id", "repeat", "fold", "prediction")


def _task(y: np.ndarray) -> str:
    return "survival" if y.dtype.names else "classification"


def splits_table(ids, y, n_splits: int = 5, n_repeats: int = 5, seed: int = 0) -> tuple[pl.DataFrame, str]:
    """The outer folds of the nested CV for these patients, outcome and seed.

    Returns
    -------
    (frame, key)
        ``patient_id, repeat, fold`` (the fold in which the patient is a test patient; every
        other fold of the repeat trains on it) and the ``splits_key`` the package's runs record.
    """
    ids = np.asarray(ids).astype(str)
    y = np.asarray(y)
    check_one_outcome_per_patient(y, ids)
    splits = grouped_splits(ids, outcome_strata(y, _task(y)), n_splits, n_repeats, seed)
    rows = [(str(ids[i]), s.repeat, s.fold) for s in splits for i in s.test]
    frame = pl.DataFrame(rows, schema={"patient_id": pl.String, "repeat": pl.Int32, "fold": pl.Int32},
                         orient="row").unique().sort("repeat", "patient_id")
    return frame, splits_key(ids, splits)


def _problem(row, column, check) -> dict:
    return {"row": row, "column": column, "check": check}


def score_oof_predictions(predictions: pd.DataFrame | pl.DataFrame, ids, y, *, n_splits: int = 5,
                          n_repeats: int = 5, seed: int = 0, model: str = "external",
                          source: str = "out-of-fold predictions") -> CVResult:
    """Check external out-of-fold predictions against the package's splits and wrap them.

    Parameters
    ----------
    predictions : DataFrame
        ``patient_id, repeat, fold, prediction`` (+ optional ``train_cut``): one row per patient
        and repeat; ``prediction`` is a probability (resistance) or a risk score, higher = earlier
        event (survival). Without ``train_cut`` the risk-group cut of a fold is the median
        prediction of the fold's training patients in the same repeat (their out-of-fold
        predictions: the training-fold predictions are not known here).
    ids, y : arrays
        Patient id and outcome (binary or structured survival) per patient.
    n_splits, n_repeats, seed : int
        The splits the predictions were made on (:func:`splits_table`).
    model : str
        Name recorded for the predictions.
    source : str
        Named in error messages.

    Raises
    ------
    ValidationError
        Missing columns, unknown or missing patients, a patient predicted twice in a repeat, a
        fold that differs from the splits, non-finite predictions.
    """
    frame = predictions.to_pandas() if isinstance(predictions, pl.DataFrame) else predictions.copy()
    missing = [c for c in OOF_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(source, [_problem(None, c, "column not found") for c in missing])
    ids = np.asarray(ids).astype(str)
    y = np.asarray(y)
    if len(np.unique(ids)) != len(ids):
        raise ValidationError(source, [_problem(None, "patient_id", "outcome ids must be unique")])
    expected, key = splits_table(ids, y, n_splits, n_repeats, seed)
    frame["patient_id"] = frame["patient_id"].astype(str)
    merged = frame.merge(expected.to_pandas(), on=["patient_id", "repeat"], how="outer",
                         suffixes=("", "_expected"), indicator=True)
    problems = []
    for _, row in merged[merged["_merge"] == "left_only"].head(5).iterrows():
        problems.append(_problem(None, "patient_id", f"{row['patient_id']!r}, repeat {row['repeat']}: not a "
                                 "patient of these splits (no outcome, or repeat out of range)"))
    for _, row in merged[merged["_merge"] == "right_only"].head(5).iterrows():
        problems.append(_problem(None, "patient_id", f"{row['patient_id']!r}, repeat {row['repeat']}: no prediction"))
    both = merged[merged["_merge"] == "both"]
    dup = both.duplicated(["patient_id", "repeat"], keep=False)
    for _, row in both[dup].head(5).iterrows():
        problems.append(_problem(None, "patient_id", f"{row['patient_id']!r}, repeat {row['repeat']}: predicted twice"))
    wrong = both[both["fold"].astype(int) != both["fold_expected"].astype(int)]
    for _, row in wrong.head(5).iterrows():
        problems.append(_problem(None, "fold", f"{row['patient_id']!r}, repeat {row['repeat']}: fold {row['fold']} "
                                 f"but the splits test it in fold {row['fold_expected']} (other seed or folds?)"))
    if not np.isfinite(pd.to_numeric(both["prediction"], errors="coerce")).all():
        problems.append(_problem(None, "prediction", "missing or non-finite prediction(s)"))
    if problems:
        raise ValidationError(source, problems)
    pos = {p: i for i, p in enumerate(ids)}
    n = len(ids)
    oof = np.full((n_repeats, n), np.nan)
    fold_of = np.full((n_repeats, n), -1, dtype=int)
    cut = np.full((n_repeats, n), np.nan)
    for p, r, f, pred in both[["patient_id", "repeat", "fold", "prediction"]].itertuples(index=False):
        oof[int(r), pos[p]] = float(pred)
        fold_of[int(r), pos[p]] = int(f)
    if "train_cut" in both.columns:
        for p, r, c in both[["patient_id", "repeat", "train_cut"]].itertuples(index=False):
            cut[int(r), pos[p]] = float(c)
        note = "train_cut as given"
    else:
        for r in range(n_repeats):
            for f in np.unique(fold_of[r]):
                cut[r, fold_of[r] == f] = np.median(oof[r, fold_of[r] != f])
        note = "train_cut: median out-of-fold prediction of the fold's training patients"
    settings = {"scheme": "repeated stratified patient-grouped CV (predictions made outside immunodig)",
                "n_splits": n_splits, "n_repeats": n_repeats, "seed": seed}
    return CVResult(model=model, task=_task(y), ids=ids, y=y, oof=oof, train_cut=cut, fold_of=fold_of,
                    best_params=[], splits_key=key, settings=settings, feature_names=[],
                    notes={"external_predictions": {"source": source, "risk_group_cut": note,
                                                    "training": "not verifiable: stated by the user"}})
