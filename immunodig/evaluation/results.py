"""Store evaluation and fit results in the DuckDB store, with provenance.

Tables (``sql/schema/100_models.sql``): ``model_runs`` (one row per run: model, outcome, feature
set, CV settings, splits key, data hash, code version, the JSON summary), ``oof_predictions``
(one row per patient and CV repeat) and ``model_metrics`` (one row per metric with its CI). A run
id is a hash of everything that determines the result, so a rerun with the same inputs replaces
its own rows in one transaction and a changed input makes a new run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from immunodig import __version__


def json_safe(obj):
    """Copy of a summary with NaN/inf as ``None`` and numpy scalars as Python (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def frame_sha256(frame) -> str:
    """Content hash of a model matrix (polars or pandas), independent of row order."""
    import polars as pl

    df = frame if isinstance(frame, pl.DataFrame) else pl.from_pandas(frame)
    df = df.sort(df.columns[0])
    return hashlib.sha256(df.write_csv().encode()).hexdigest()


def model_run_id(kind: str, model: str, outcome: str, feature_set: str, settings: dict,
                 data_sha256: str) -> str:
    """Deterministic ``m_<16 hex>`` id of a model run."""
    payload = json.dumps({"code": __version__, "kind": kind, "model": model, "outcome": outcome,
                          "features": feature_set, "settings": settings, "data": data_sha256},
                         sort_keys=True, default=str)
    return "m_" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def metric_rows(summary: dict) -> list[tuple[str, float, float | None, float | None]]:
    """Flatten a CV summary into ``(metric, value, ci_low, ci_high)`` rows."""
    rows = []
    for key, value in summary.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and key not in ("n", "n_rows", "n_events") and not key.startswith("n_"):
            ci = summary.get(f"{key}_ci") or [None, None]
            rows.append((key, float(value), ci[0], ci[1]))
    for key, value in (summary.get("calibration") or {}).items():
        rows.append((f"calibration_{key}", float(value), None, None))
    if "td_auc" in summary:
        rows.append(("td_auc_mean", float(summary["td_auc"]["mean_auc"]), None, None))
        for t, a in zip(summary["td_auc"]["times"], summary["td_auc"]["auc"]):
            rows.append((f"td_auc_at_{t:g}", float(a), None, None))
    if "risk_groups" in summary:
        rows.append(("risk_groups_median_logrank_p",
                     float(summary["risk_groups"]["median_logrank_p"]), None, None))
    return [(m, None if np.isnan(v) else v, lo, hi) for m, v, lo, hi in rows]


def record_run(store_path: str | Path, *, kind: str, model: str, task: str, outcome: str,
               feature_set: str, features: list[str], settings: dict, summary: dict,
               data_sha256: str, result=None, model_file: str | None = None,
               model_sha256: str | None = None) -> str:
    """Write one model run (and, for ``evaluate``, its OOF predictions and metrics).

    Returns
    -------
    str
        The ``model_run_id``.
    """
    from immunodig.store import Store

    run_id = model_run_id(kind, model, outcome, feature_set, settings, data_sha256)
    with Store.open(store_path) as store, store.transaction() as con:
        for table in ("oof_predictions", "model_metrics", "model_runs"):
            con.execute(f"delete from {table} where model_run_id = $id", {"id": run_id})
        con.execute(
            "insert into model_runs (model_run_id, kind, model, task, outcome, feature_set, "
            "features_json, settings_json, splits_key, n_patients, n_events, "
            "n_dropped_missing_outcome, data_sha256, code_version, validation, summary_json, "
            "model_file, model_sha256) values ($id, $kind, $model, $task, $outcome, $fs, "
            "$features, $settings, $splits, $n, $events, $dropped, $data, $code, $validation, "
            "$summary, $file, $sha)",
            {"id": run_id, "kind": kind, "model": model, "task": task, "outcome": outcome,
             "fs": feature_set, "features": json.dumps(features),
             "settings": json.dumps(settings, default=str),
             "splits": (summary.get("splits") or {}).get("key"),
             "n": int(summary.get("n", 0)), "events": int(summary.get("n_events", 0)),
             "dropped": int(summary.get("n_dropped_missing_outcome", 0)),
             "data": data_sha256, "code": __version__,
             "validation": summary.get("validation", "none (fitted model)"),
             "summary": json.dumps(json_safe(summary), default=str), "file": model_file,
             "sha": model_sha256})
        if result is not None:
            rows = [(run_id, str(pid), r, int(result.fold_of[r, i]), float(result.oof[r, i]),
                     float(result.train_cut[r, i]))
                    for r in range(result.oof.shape[0]) for i, pid in enumerate(result.ids)]
            con.executemany("insert into oof_predictions values (?, ?, ?, ?, ?, ?)", rows)
            con.executemany("insert into model_metrics values (?, ?, ?, ?, ?)",
                            [(run_id, *row) for row in metric_rows(summary)])
    return run_id
