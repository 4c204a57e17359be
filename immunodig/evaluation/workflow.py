"""Store-level workflows behind ``cli.py evaluate/fit/predict``: matrix -> CV/fit -> store.

Each function is what one command does, so scripts and notebooks can call the same thing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from immunodig.errors import ConfigError
from immunodig.evaluation.nested_cv import fit_final_model
from immunodig.evaluation.results import frame_sha256, record_run
from immunodig.evaluation.tabular import Outcome, evaluate_table, prepare_table
from immunodig.models.matrix import OUTCOMES, feature_columns, model_matrix
from immunodig.models.persistence import load_model, save_model
from immunodig.models.registry import get_model
from immunodig.provenance import file_sha256


def store_outcome(outcome: str) -> Outcome:
    """The outcome columns of a store matrix for ``resistance`` or ``pfs``."""
    if outcome not in OUTCOMES:
        raise ConfigError(f"unknown outcome {outcome!r}; choose one of {sorted(OUTCOMES)}")
    if outcome == "resistance":
        return Outcome(label="primary_resistance")
    return Outcome(time="pfs_months", event="pfs_event")


def _check_task(model: str, outcome: str) -> None:
    task = get_model(model).task
    if (task == "classification") != (outcome == "resistance"):
        raise ConfigError(f"model {model!r} ({task}) does not fit outcome {outcome!r}: use "
                          "logistic/xgboost for resistance, cox/xgb-cox/xgb-aft for pfs")


def evaluate_store(store_path, outcome: str, features, model: str, *, n_splits: int = 5,
                   n_repeats: int = 5, seed: int = 0, n_boot: int = 1000, record: bool = True,
                   **cv_kwargs) -> dict:
    """Nested CV on the store's model matrix; results recorded in the store (``model_runs``...)."""
    _check_task(model, outcome)
    matrix = model_matrix(store_path, features, outcome)
    df = matrix.to_pandas()
    summary, result = evaluate_table(df, "patient_id", store_outcome(outcome), model,
                                     feature_columns(matrix), n_splits=n_splits,
                                     n_repeats=n_repeats, seed=seed, n_boot=n_boot,
                                     source="model matrix", **cv_kwargs)
    feature_set = features if isinstance(features, str) else ",".join(features)
    summary.update(outcome=outcome, feature_set=feature_set)
    if record:
        summary["model_run_id"] = record_run(
            store_path, kind="evaluate", model=model, task=result.task, outcome=outcome,
            feature_set=feature_set, features=result.feature_names,
            settings={**result.settings, "n_boot": n_boot}, summary=summary,
            data_sha256=frame_sha256(matrix), result=result)
    return summary


def fit_store(store_path, outcome: str, features, model: str, out: str | Path, *,
              seed: int = 0, record: bool = True, on_sample_size=None) -> dict:
    """Fit a model on all patients of the store, save it with metadata, record the fit
    (``sample_size``, ``on_sample_size`` and, for ``cox``, the inference fit as in
    :func:`fit_table`; where it is impossible -- no complete rows, no convergence -- the
    reason is in ``inference["error"]``)."""
    _check_task(model, outcome)
    matrix = model_matrix(store_path, features, outcome)
    X, y, ids, notes = prepare_table(matrix.to_pandas(), "patient_id", store_outcome(outcome),
                                     feature_columns(matrix), "model matrix")
    plan = _sample_size(X, y, ids, model, None, on_sample_size)
    pipe, params = fit_final_model(X, y, ids, model, seed=seed)
    feature_set = features if isinstance(features, str) else ",".join(features)
    data_sha = frame_sha256(matrix)
    meta = {"model": model, "task": get_model(model).task, "outcome": outcome,
            "feature_set": feature_set, "features": [str(c) for c in X.columns],
            "params": {k: (v.item() if isinstance(v, np.generic) else v)
                       for k, v in params.items()},
            "n_patients": int(len(np.unique(ids))),
            "n_events": int((y["event"] if y.dtype.names else y).sum()),
            "data_sha256": data_sha, "seed": seed, "sample_size": plan, **notes}
    if model == "cox":
        from lifelines.exceptions import ConvergenceError

        from immunodig.errors import ValidationError

        try:
            meta.update(_cox_inference_meta(X, y, ids, source="model matrix"))
        except (ValidationError, ConvergenceError) as exc:  # e.g. no complete rows
            meta["inference"] = {"error": f"unpenalised inference fit not possible: "
                                          f"{str(exc).splitlines()[-1].strip()}"}
    path = save_model(pipe, out, meta)
    meta["model_file"] = str(path)
    if record:
        meta["model_run_id"] = record_run(
            store_path, kind="fit", model=model, task=meta["task"], outcome=outcome,
            feature_set=feature_set, features=meta["features"],
            settings={"seed": seed, "params": meta["params"]},
            summary={**meta, "n": meta["n_patients"], "validation": "none (fitted model)"},
            data_sha256=data_sha, model_file=str(path), model_sha256=file_sha256(path))
    return meta


def _cox_inference_meta(X, y, ids, **options) -> dict:
    """``hazard_ratios``, ``ph_test`` and ``inference`` of the unpenalised Cox fit."""
    from immunodig.evaluation.inference import cox_inference

    inf = cox_inference(X, y, ids, **options)
    return {"hazard_ratios": inf.pop("hazard_ratios"), "ph_test": inf.pop("ph_test"),
            "inference": {**inf, "note": (
                "hazard_ratios and ph_test come from this unpenalised fit; the saved "
                "prediction model is penalised (per-SD, shrunk): its coefficients are not "
                "inference")}}


def _sample_size(X, y, ids, model: str, r2_cs, on_sample_size) -> dict:
    import warnings

    from immunodig.errors import SampleSizeWarning
    from immunodig.evaluation.sample_size import fit_sample_size

    plan = fit_sample_size(X, y, ids, model, r2_cs)
    if on_sample_size is not None:
        on_sample_size(plan)
    if plan.get("warning"):
        warnings.warn(plan["warning"], SampleSizeWarning, stacklevel=3)
    return plan


def patient_events(y, ids) -> int:
    """Number of patients with an event (or a positive label); rows of one patient count once."""
    y = np.asarray(y)
    flag = (y["event"] if y.dtype.names else y).astype(bool)
    return int(pd.Series(flag).groupby(np.asarray(ids).astype(str)).max().sum())


def fit_table(df: pd.DataFrame, id_col: str, outcome: Outcome, model: str, out: str | Path,
              covariates: list[str] | None = None, *, seed: int = 0,
              reference: dict | None = None, categorical: list[str] | None = None,
              per_sd: bool = False, source: str = "table", r2_cs: float | None = None,
              on_sample_size=None) -> dict:
    """Fit a model on every patient of a table, save it, and return its metadata.

    For ``cox`` the metadata also hold the unpenalised inference fit
    (:func:`immunodig.evaluation.inference.cox_inference`): ``hazard_ratios``, ``ph_test`` and
    ``inference`` (sample used, method). The saved model is the penalised prediction pipeline.
    ``sample_size`` holds Riley's criteria (:func:`immunodig.evaluation.sample_size.
    fit_sample_size`, anticipated Cox-Snell R² ``r2_cs``); ``on_sample_size(dict)`` is called
    with them before fitting (the CLI prints them) and a :class:`SampleSizeWarning` is issued
    when the patients do not meet them.
    """
    spec = get_model(model)
    if (spec.task == "classification") != (outcome.label is not None):
        raise ConfigError(f"model {model!r} is a {spec.task} model: give "
                          + ("--label" if spec.task == "classification"
                             else "--time and --event"))
    X, y, ids, notes = prepare_table(df, id_col, outcome, covariates, source)
    plan = _sample_size(X, y, ids, model, r2_cs, on_sample_size)
    pipe, params = fit_final_model(X, y, ids, model, seed=seed)
    meta = {"model": model, "task": spec.task, "source": source, "id_column": id_col,
            "outcome_columns": {"label": outcome.label, "time": outcome.time,
                                "event": outcome.event},
            "features": [str(c) for c in X.columns],
            "params": {k: (v.item() if isinstance(v, np.generic) else v)
                       for k, v in params.items()},
            "n_patients": int(len(np.unique(ids))), "n_rows": int(len(ids)),
            "n_events": patient_events(y, ids), "seed": seed, "sample_size": plan, **notes}
    if model == "cox":
        meta.update(_cox_inference_meta(X, y, ids, reference=reference,
                                        categorical=categorical, per_sd=per_sd, source=source))
    path = save_model(pipe, out, meta)
    meta["model_file"] = str(path)
    return meta


def predict(model_file, *, store_path=None, table=None, id_col: str = "patient_id"
            ) -> pd.DataFrame:
    """Apply a saved model to the store's patients or a table.

    Returns a frame ``patient_id, prediction`` (probability of resistance, or PFS risk score with
    higher = earlier progression, per the model's task).
    """
    from immunodig.evaluation.tabular import read_table

    pipe, meta = load_model(model_file)
    if (store_path is None) == (table is None):
        raise ConfigError("give exactly one of --store or --table")
    if store_path is not None:
        df = model_matrix(store_path, meta["features"], meta["outcome"]).to_pandas()
        id_col = "patient_id"
    else:
        df = read_table(table) if not isinstance(table, pd.DataFrame) else table
    missing = [c for c in meta["features"] if c not in df.columns]
    if missing:
        raise ConfigError(f"{len(missing)} feature column(s) the model was fitted on are "
                          f"missing: {missing[:10]}")
    if id_col not in df.columns:
        raise ConfigError(f"id column {id_col!r} not found")
    X = df[meta["features"]]
    pred = (pipe.predict_proba(X)[:, 1] if meta["task"] == "classification"
            else pipe.predict(X))
    kind = "probability" if meta["task"] == "classification" else "risk_score"
    return pd.DataFrame({"patient_id": df[id_col].astype(str), "prediction": pred,
                         "prediction_type": kind})


def compare_store(store_path, outcome: str, model: str,
                  feature_sets=("clinical", "morphology", "combined"), reference: str = "clinical",
                  *, n_splits: int = 5, n_repeats: int = 5, seed: int = 0, n_boot: int = 1000,
                  mil: tuple[str, ...] = (), mil_options: dict | None = None, **cv_kwargs) -> dict:
    """AUC (resistance) or C-index (PFS) with CIs for each feature set of the store, on identical
    splits, with the paired difference from ``reference`` (what ``cli.py demo`` prints).

    Feature sets without any column in the store (e.g. no genomic data imported) are skipped and
    listed under ``skipped``. ``mil`` adds MIL models on the tile embeddings (each named after
    the model) to the same table; all sets are then scored on the patients with embeddings
    (``n_without_embeddings`` counts the others). ``mil_options`` are passed to
    :func:`immunodig.mil.store_evaluation.mil_data` (``encoder_sha256``, ``clinical``) and the
    MIL fit (``epochs``, ...).
    """
    from immunodig.evaluation.compare import compare_feature_sets

    _check_task(model, outcome)
    target = store_outcome(outcome)
    matrix = model_matrix(store_path, list(dict.fromkeys(feature_sets)), outcome)
    sets, skipped = {}, []
    for name in feature_sets:
        cols = feature_columns(model_matrix(store_path, name, outcome))
        if cols:
            sets[name] = cols
        else:
            skipped.append(name)
    if reference not in sets:
        reference = next(iter(sets))
    X, y, ids, notes = prepare_table(matrix.to_pandas(), "patient_id", target,
                                     feature_columns(matrix), "model matrix")
    extra = {}
    if mil:
        from immunodig.mil.store_evaluation import mil_data, run_mil_cv

        options = dict(mil_options or {})
        data = mil_data(store_path, outcome, patients=ids, encoder_sha256=options.pop("encoder_sha256", None),
                        clinical=options.pop("clinical", False))
        keep = np.isin(ids, data.ids)
        X, y, ids = X.loc[keep].reset_index(drop=True), y[keep], ids[keep]
        if not np.array_equal(ids, data.ids):
            data = data.reordered(ids)
        notes["n_without_embeddings"] = int((~keep).sum())
        for name in mil:
            result = run_mil_cv(data, name, n_splits=n_splits, n_repeats=n_repeats, seed=seed, **options)
            result.notes.pop("attention")
            extra[name] = result
    sets = _usable_sets(sets, X, "model matrix")
    out, _ = compare_feature_sets(X, y, ids, sets, model, reference, n_boot=n_boot, seed=seed,
                                  n_splits=n_splits, n_repeats=n_repeats, extra_results=extra,
                                  **cv_kwargs)
    out.update(outcome=outcome, skipped=skipped, **notes)
    return out


def _usable_sets(sets: dict[str, list[str]], X: pd.DataFrame, source: str) -> dict[str, list[str]]:
    """Each set restricted to the columns :func:`prepare_table` kept (constant and all-missing
    covariates are left out); a set left without a column is refused."""
    from immunodig.errors import ValidationError

    kept = {name: [c for c in cols if c in X.columns] for name, cols in sets.items()}
    empty = [name for name, cols in kept.items() if not cols]
    if empty:
        raise ValidationError(source, [{"row": None, "column": None, "check": (
            f"feature set {name!r}: every column is constant or entirely missing")} for name in empty])
    return kept


def parse_feature_sets(items: list[str]) -> dict[str, list[str]]:
    """``["clinical=age,sex", "morphology=til,area", "combined=clinical,morphology"]`` ->
    name -> columns; a token naming an earlier set stands for its columns."""
    sets: dict[str, list[str]] = {}
    for item in items:
        name, sep, cols = item.partition("=")
        if not sep or not name.strip() or not cols.strip():
            raise ConfigError(f"feature set must be NAME=COL1,COL2,..., got {item!r}")
        expanded: list[str] = []
        for tok in (c.strip() for c in cols.split(",") if c.strip()):
            expanded.extend(sets.get(tok, [tok]))
        sets[name.strip()] = list(dict.fromkeys(expanded))
    if len(sets) < 2:
        raise ConfigError("give at least two feature sets to compare")
    return sets


def compare_table(df: pd.DataFrame, id_col: str, outcome: Outcome, model: str,
                  feature_sets: dict[str, list[str]], reference: str | None = None, *,
                  n_splits: int = 5, n_repeats: int = 5, seed: int = 0, n_boot: int = 1000,
                  source: str = "table", **cv_kwargs) -> dict:
    """Feature sets of a table compared on identical splits (see
    :func:`immunodig.evaluation.compare_feature_sets`): per-set metric with CIs, paired
    differences from ``reference`` with the corrected resampled t-test."""
    from immunodig.evaluation.compare import compare_feature_sets

    spec = get_model(model)
    if (spec.task == "classification") != (outcome.label is not None):
        raise ConfigError(f"model {model!r} is a {spec.task} model: give "
                          + ("--label" if spec.task == "classification"
                             else "--time and --event"))
    columns = list(dict.fromkeys(c for cols in feature_sets.values() for c in cols))
    X, y, ids, notes = prepare_table(df, id_col, outcome, columns, source)
    feature_sets = _usable_sets(feature_sets, X, source)
    out, _ = compare_feature_sets(X, y, ids, feature_sets, model, reference, n_boot=n_boot,
                                  seed=seed, n_splits=n_splits, n_repeats=n_repeats,
                                  **cv_kwargs)
    out.update(source=source, **notes)
    return out


def store_patients(store_path, outcome: str):
    """Patient ids and outcome of the store's patients with a known ``outcome`` (the rows every
    store evaluation uses)."""
    matrix = model_matrix(store_path, "clinical", outcome)
    _, y, ids, notes = prepare_table(matrix.to_pandas(), "patient_id", store_outcome(outcome),
                                     feature_columns(matrix), "model matrix", drop_uninformative=False)
    return ids, y, notes, frame_sha256(matrix)


def splits_store(store_path, outcome: str, *, n_splits: int = 5, n_repeats: int = 5, seed: int = 0):
    """The outer CV folds of the store's patients for ``outcome`` (``cli.py splits``): the
    partitions every ``evaluate --store`` run with these settings uses.

    Returns
    -------
    (polars.DataFrame, str)
        ``patient_id, repeat, fold`` and the ``splits_key``.
    """
    from immunodig.evaluation.external_oof import splits_table

    ids, y, _, _ = store_patients(store_path, outcome)
    return splits_table(ids, y, n_splits, n_repeats, seed)


def evaluate_store_oof(store_path, outcome: str, predictions: str | Path, name: str, *, n_splits: int = 5,
                       n_repeats: int = 5, seed: int = 0, n_boot: int = 1000, record: bool = True) -> dict:
    """Score out-of-fold predictions made outside immunodig on the store's splits
    (``evaluate --oof-file``) and record them like a package run, so ``compare``-style paired
    analyses and the report see them beside the package's models."""
    from immunodig.evaluation.external_oof import score_oof_predictions
    from immunodig.evaluation.tabular import read_table

    ids, y, notes, data_sha = store_patients(store_path, outcome)
    result = score_oof_predictions(read_table(predictions), ids, y, n_splits=n_splits, n_repeats=n_repeats,
                                   seed=seed, model=name, source=str(predictions))
    summary = result.summary(n_boot=n_boot, seed=seed)
    summary.update(validation="internal (the package's CV splits; predictions made outside immunodig)",
                   outcome=outcome, feature_set="external predictions", **notes)
    if record:
        summary["model_run_id"] = record_run(
            store_path, kind="evaluate", model=name, task=result.task, outcome=outcome,
            feature_set="external predictions", features=[], settings={**result.settings, "n_boot": n_boot},
            summary=summary, data_sha256=data_sha + ":" + file_sha256(predictions), result=result)
    return summary
