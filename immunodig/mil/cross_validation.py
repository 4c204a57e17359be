"""Nested, patient-grouped cross-validation of MIL models: the tabular models' statistics.

The outer splits are :func:`immunodig.evaluation.splits.grouped_splits` on the same patient ids,
strata and seed as the tabular models, so MIL results pair with theirs (same ``splits_key``).
Hyper-parameters are fixed a priori (:class:`~immunodig.mil.training.MILParams`) or, with a
``param_grid``, chosen inside each outer training set by a grouped inner K-fold. The result is a
:class:`~immunodig.evaluation.nested_cv.CVResult`, so every metric, corrected interval and figure
of the tabular models applies unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import ParameterGrid

from immunodig.errors import ValidationError
from immunodig.evaluation.nested_cv import (
    CVResult,
    check_one_outcome_per_patient,
    default_eval_times,
    fold_seed,
    outcome_strata,
    score_predictions,
)
from immunodig.evaluation.splits import grouped_splits, splits_key
from immunodig.mil.training import MILParams, fit_mil, predict_bags
from immunodig.vocab import MIL_MODELS

VALIDATION = "internal (nested cross-validation)"


def _target(labels, time, event, n: int) -> np.ndarray:
    if (labels is None) == (time is None or event is None):
        raise ValidationError("cross_validate_bags", [{
            "row": None, "column": None, "check": "give labels, or time and event"}])
    if labels is not None:
        y = np.asarray(labels, dtype=float)
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            raise ValidationError("cross_validate_bags", [{
                "row": int(np.flatnonzero(bad)[0]), "column": "label",
                "check": f"{int(bad.sum())} label(s) missing or not 0/1"}])
        y = y.astype(int)
    else:
        from immunodig.models import survival_target

        y = survival_target(np.asarray(time, dtype=float), np.asarray(event, dtype=bool))
    if len(y) != n:
        raise ValidationError("cross_validate_bags", [{
            "row": None, "column": None, "check": f"{n} bags but {len(y)} outcomes"}])
    return y


def _check_bags(bags: list[np.ndarray]) -> list[np.ndarray]:
    bags = [np.asarray(b, dtype=np.float32) for b in bags]
    dims = {b.shape[1] if b.ndim == 2 else None for b in bags}
    empty = [i for i, b in enumerate(bags) if b.ndim != 2 or len(b) == 0]
    if empty or len(dims) != 1:
        raise ValidationError("cross_validate_bags", [{
            "row": empty[0] if empty else None, "column": "bag",
            "check": "every bag must be a non-empty (n_tiles, dim) array of one common dim"}])
    bad = [i for i, b in enumerate(bags) if not np.isfinite(b).all()]
    if bad:
        raise ValidationError("cross_validate_bags", [{
            "row": bad[0], "column": "bag", "check": f"{len(bad)} bag(s) hold NaN or infinite values"}])
    return bags


def _subset(items, index):
    return None if items is None else [items[i] for i in index] if isinstance(items, list) else items[index]


def _select(bags, y, ids, clinical, model, task, grid, inner_splits, seed) -> tuple[MILParams, float]:
    """Pick MIL hyper-parameters by grouped stratified K-fold on the training bags."""
    if len(grid) == 1:
        return grid[0], float("nan")
    inner = grouped_splits(ids, outcome_strata(y, task), n_splits=inner_splits, n_repeats=1, seed=seed)
    scores = []
    for params in grid:
        fold_scores = []
        for s in inner:
            fitted = fit_mil(_subset(bags, s.train), y[s.train], model, params=params, seed=seed,
                             clinical=_subset(clinical, s.train))
            pred, _ = predict_bags(fitted, _subset(bags, s.test), _subset(clinical, s.test))
            fold_scores.append(score_predictions(task, y[s.test], pred))
        scores.append(np.nanmean(fold_scores))
    best = int(np.nanargmax(scores))
    return grid[best], float(scores[best])


def cross_validate_bags_result(bags: list[np.ndarray], labels=None, model: str = "abmil", seed: int = 0,
                               groups=None, time=None, event=None, *, n_splits: int = 5,
                               n_repeats: int = 5, inner_splits: int = 3,
                               param_grid: dict[str, list] | None = None,
                               clinical: np.ndarray | None = None, eval_times=None,
                               keep_attention: bool = False, **params) -> CVResult:
    """Nested CV of a MIL model; the :class:`CVResult` behind :func:`cross_validate_bags`.

    With ``keep_attention`` the result's ``notes["attention"]`` holds, per bag, the tile
    weights of the first repeat's out-of-fold model (the model that never saw the bag).
    See :func:`cross_validate_bags` for the parameters.
    """
    if model not in MIL_MODELS:
        raise ValidationError("cross_validate_bags", [{
            "row": None, "column": "model", "check": f"unknown MIL model {model!r}; choose one of {MIL_MODELS}"}])
    bags = _check_bags(bags)
    y = _target(labels, time, event, len(bags))
    task = "survival" if y.dtype.names else "classification"
    ids = (np.arange(len(bags)) if groups is None else np.asarray(groups)).astype(str)
    if len(ids) != len(bags):
        raise ValidationError("cross_validate_bags", [{
            "row": None, "column": "groups", "check": f"{len(bags)} bags but {len(ids)} group ids"}])
    check_one_outcome_per_patient(y, ids)
    if clinical is not None:
        clinical = np.asarray(clinical, dtype=float).reshape(len(bags), -1)
    base = MILParams.from_dict(params)
    grid = [MILParams.from_dict({**base.to_dict(), **g}) for g in ParameterGrid(param_grid or {})]
    splits = grouped_splits(ids, outcome_strata(y, task), n_splits, n_repeats, seed)
    n = len(bags)
    oof = np.full((n_repeats, n), np.nan)
    cut = np.full((n_repeats, n), np.nan)
    fold_of = np.full((n_repeats, n), -1, dtype=int)
    if task == "survival":
        eval_times = default_eval_times(y) if eval_times is None else np.asarray(eval_times, dtype=float)
        oof_surv = np.full((n_repeats, n, len(eval_times)), np.nan)
    else:
        eval_times = oof_surv = None
    attention: list[np.ndarray | None] = [None] * n
    best_params = []
    for s in splits:
        fseed = fold_seed(seed, s.repeat, s.fold)
        chosen, inner_score = _select(_subset(bags, s.train), y[s.train], ids[s.train],
                                      _subset(clinical, s.train), model, task, grid, inner_splits, fseed)
        fitted = fit_mil(_subset(bags, s.train), y[s.train], model, params=chosen, seed=fseed,
                         clinical=_subset(clinical, s.train))
        pred_test, w_test = predict_bags(fitted, _subset(bags, s.test), _subset(clinical, s.test))
        pred_train, _ = predict_bags(fitted, _subset(bags, s.train), _subset(clinical, s.train))
        oof[s.repeat, s.test] = pred_test
        cut[s.repeat, s.test] = np.median(pred_train)
        fold_of[s.repeat, s.test] = s.fold
        if oof_surv is not None:
            from immunodig.models.survival import breslow_survival

            ytr = y[s.train]
            oof_surv[s.repeat, s.test] = breslow_survival(ytr["time"], ytr["event"], pred_train,
                                                          pred_test, eval_times)
        if keep_attention and s.repeat == 0:
            for i, w in zip(s.test, w_test):
                attention[i] = w
        best_params.append({"repeat": s.repeat, "fold": s.fold, "params": chosen.to_dict(),
                            "inner_score": None if np.isnan(inner_score) else inner_score})
    settings = {"scheme": "repeated stratified patient-grouped nested CV", "n_splits": n_splits,
                "n_repeats": n_repeats, "inner_splits": inner_splits, "seed": seed, "select_k": None,
                "param_grid": param_grid or {}, "mil_params": base.to_dict()}
    dim = bags[0].shape[1]
    notes: dict[str, Any] = {"mil": {"model": model, "embedding_dim": int(dim),
                                     "n_tiles_median": float(np.median([len(b) for b in bags]))}}
    if clinical is not None:
        notes["mil"]["n_clinical"] = int(clinical.shape[1])
    if keep_attention:
        notes["attention"] = attention
    return CVResult(model=model, task=task, ids=ids, y=y, oof=oof, train_cut=cut, fold_of=fold_of,
                    best_params=best_params, splits_key=splits_key(ids, splits), settings=settings,
                    feature_names=[f"embedding_{j}" for j in range(dim)], eval_times=eval_times,
                    oof_surv=oof_surv, notes=notes)


def cross_validate_bags(bags: list[np.ndarray], labels=None, model: str = "abmil", seed: int = 0,
                        groups=None, time=None, event=None, *, n_boot: int = 1000, **params) -> dict:
    """Repeated, stratified, patient-grouped nested CV of a MIL model on bags of embeddings.

    Parameters
    ----------
    bags : list of arrays (n_i, dim)
        Tile embeddings of each bag (one bag per patient, pooling its H&E slides; or one per
        slide with ``groups`` naming the patient).
    labels : array, optional
        Binary outcome per bag (e.g. primary resistance).
    model : str
        ``abmil``, ``transmil``, ``meanpool`` or ``maxpool``.
    seed : int
        Seed of the splits, the networks and the bootstrap; same seed -> same result.
    groups : array, optional
        Patient of each bag (default: every bag its own patient); patients never straddle
        training and test.
    time, event : arrays, optional
        Survival outcome (e.g. PFS) instead of ``labels``: Cox partial-likelihood loss.
    n_boot : int
        Bootstrap replicates of the intervals.
    **params
        ``n_splits``, ``n_repeats``, ``inner_splits``, ``param_grid`` (dict of lists searched in
        the inner loop), ``clinical`` (array (n_bags, p), late fusion), ``eval_times``, and any
        :class:`~immunodig.mil.training.MILParams` field (``epochs``, ``lr``, ...).

    Returns
    -------
    dict
        The keys of the tabular evaluations (``auc``, ``auc_ci``, ... or ``c_index``,
        ``c_index_ci``, ...), computed per patient, with ``mil`` describing the model.
    """
    result = cross_validate_bags_result(bags, labels, model, seed, groups, time, event, **params)
    return result.summary(n_boot=n_boot, seed=seed)
