"""Report sections from stored model evaluations: ROC, calibration, risk groups, explanations,
feature-set comparison. Curves are recomputed from the stored out-of-fold predictions
(``oof_predictions``); headline metrics and CIs come from ``model_metrics``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from immunodig.errors import ImmunodigError, QueryError, SectionUnavailable
from immunodig.report.calibration import calibration_curve_ci, plot_calibration
from immunodig.report.comparison import plot_feature_set_comparison
from immunodig.report.figures import new_figure, png_data_uri
from immunodig.report.importance import mean_abs_shap, plot_hazard_ratios, plot_importance
from immunodig.report.km import km_by_group, plot_km
from immunodig.report.roc import plot_roc, roc_curve_ci
from immunodig.report.sections import FigureItem, Section, TableItem

#: Evaluations drawn per section (latest first, one per model / outcome / feature set).
MAX_RUNS = 4
#: Survival endpoint columns of ``outcomes`` used for risk-group curves.
ENDPOINTS: dict[str, tuple[str, str]] = {"pfs": ("pfs_months", "pfs_event"),
                                         "os": ("os_months", "os_event")}


def model_runs(store: Path, kind: str) -> pd.DataFrame:
    """Latest run of ``kind`` per (model, outcome, feature set), newest first."""
    from immunodig.store import query

    try:
        df = query(store, """
            select * from model_runs where kind = $kind
            qualify row_number() over (partition by model, outcome, feature_set
                                       order by created_at desc) = 1
            order by created_at desc, model_run_id
        """, {"kind": kind}).to_pandas()
    except QueryError as exc:
        raise SectionUnavailable("this store has no model tables (created by migration 100); "
                                 "open it once read-write with this immunodig version") from exc
    if df.empty:
        what = "evaluate" if kind == "evaluate" else "fit"
        raise SectionUnavailable(f"no model {kind} run stored yet; run `python cli.py {what} "
                                 "--store ...`")
    return df


def _metrics(store: Path, run_id: str) -> dict[str, tuple[float, float, float]]:
    from immunodig.store import query

    df = query(store, "select metric, value, ci_low, ci_high from model_metrics "
                      "where model_run_id = $id", {"id": run_id}).to_pandas()
    return {r.metric: (r.value, r.ci_low, r.ci_high) for r in df.itertuples()}


def oof_table(store: Path, run_id: str) -> pd.DataFrame:
    """Out-of-fold predictions of a run joined to the patients' outcomes."""
    from immunodig.store import query

    return query(store, """
        select o.patient_id, o."repeat", o.prediction, o.train_cut,
               x.primary_resistance, x.pfs_months, x.pfs_event, x.os_months, x.os_event
        from oof_predictions o
        left join outcomes x on x.patient_id = o.patient_id
        where o.model_run_id = $id
    """, {"id": run_id}).to_pandas()


def _run_label(run) -> str:
    return f"{run.model} · {run.outcome} · features: {run.feature_set}"


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def performance_section(store: Path) -> Section:
    """ROC and calibration curves of the latest classification evaluations, with CIs."""
    runs = model_runs(store, "evaluate")
    cls = runs[runs["task"] == "classification"].head(MAX_RUNS)
    sec = Section("performance", "Discrimination and calibration (resistance)",
                  "Internal validation by repeated nested cross-validation: every prediction is "
                  "out-of-fold. Curves use each patient's mean out-of-fold probability over "
                  "repeats (band: patient bootstrap); the AUC and its CI are the stored "
                  "estimate (mean over repeats, patient bootstrap).")
    rows = []
    for run in runs.itertuples():
        m = _metrics(store, run.model_run_id)
        key = "auc" if run.task == "classification" else "c_index"
        est = m.get(key, (None, None, None))
        rows.append([run.model, run.outcome, run.feature_set, str(run.n_patients),
                     str(run.n_events), key, _fmt(est[0]),
                     f"{_fmt(est[1])}-{_fmt(est[2])}", run.validation, run.model_run_id])
        if est[0] is not None and est[0] < 0.5:
            sec.notes.append(f"{_run_label(run)}: {key} {_fmt(est[0])} is below chance (0.5): "
                             "the model ranks patients worse than a coin; it carries no signal "
                             "here (or the outcome coding is reversed)")
    sec.tables.append(TableItem("stored evaluations (latest per model / outcome / feature set)",
                                ["model", "outcome", "features", "patients", "events", "metric",
                                 "estimate", "95% CI", "validation", "model_run_id"], rows))
    if cls.empty:
        sec.notes.append("not available: ROC and calibration need a classification "
                         "(resistance) evaluation; none stored.")
        return sec
    for run in cls.itertuples():
        oof = oof_table(store, run.model_run_id)
        per_patient = oof.groupby("patient_id").agg(p=("prediction", "mean"),
                                                    y=("primary_resistance", "first")).dropna()
        if per_patient["y"].nunique() < 2:
            sec.notes.append(f"{_run_label(run)}: not available: outcomes of one class only")
            continue
        curve = roc_curve_ci(per_patient["y"], per_patient["p"])
        stored = _metrics(store, run.model_run_id).get("auc")
        if stored and stored[0] is not None and stored[1] is not None:
            curve = dataclasses.replace(curve, auc=float(stored[0]),
                                        auc_ci=(float(stored[1]), float(stored[2])))
        fig = new_figure((9.5, 4.2))
        plot_roc(curve, ax=fig.add_subplot(1, 2, 1), label=run.model)
        plot_calibration(calibration_curve_ci(per_patient["y"], per_patient["p"]),
                         ax=fig.add_subplot(1, 2, 2))
        sec.figures.append(FigureItem(png_data_uri(fig), _run_label(run), "ROC and calibration"))
    return sec


def risk_group_section(store: Path) -> Section:
    """Kaplan-Meier curves of out-of-fold predicted risk groups, at-risk counts, log-rank p."""
    runs = model_runs(store, "evaluate").head(MAX_RUNS)
    sec = Section("risk_groups", "Kaplan-Meier curves of predicted risk groups",
                  "A patient is high risk when its out-of-fold prediction exceeds the median "
                  "prediction of the training patients of its fold (a pre-specified cut, never "
                  "tuned on outcomes). First CV repeat shown; classification runs are shown "
                  "against progression-free survival.")
    for run in runs.itertuples():
        time_col, event_col = ENDPOINTS.get(run.outcome, ENDPOINTS["pfs"])
        oof = oof_table(store, run.model_run_id)
        first = oof[oof["repeat"] == oof["repeat"].min()].dropna(subset=[time_col, event_col])
        if first.empty:
            sec.notes.append(f"{_run_label(run)}: not available: no patient with "
                             f"{time_col} and {event_col}")
            continue
        high = first["prediction"].to_numpy() > first["train_cut"].to_numpy()
        group = np.where(high, "high predicted risk", "low predicted risk")
        result = km_by_group(first[time_col], first[event_col], group,
                             order=["low predicted risk", "high predicted risk"])
        fig = new_figure((6.0, 5.0))
        plot_km(result, ax=fig.add_subplot(), title=f"{_run_label(run)} · endpoint {time_col}")
        if risk_groups_inverted(result):
            sec.notes.append(f"{_run_label(run)}: risk groups are inverted: the high predicted "
                             "risk group has the better event-free survival")
        median_p = _metrics(store, run.model_run_id).get("risk_groups_median_logrank_p")
        caption = _run_label(run)
        if median_p and median_p[0] is not None:
            caption += f"; median log-rank p over CV repeats = {median_p[0]:.3g}"
        sec.figures.append(FigureItem(png_data_uri(fig), caption, "Kaplan-Meier risk groups"))
    if not sec.figures:
        raise SectionUnavailable("no stored evaluation has patients with survival data; "
                                 + "; ".join(sec.notes))
    return sec


def risk_groups_inverted(result) -> bool:
    """True when the high-risk group's Kaplan-Meier curve lies above the low-risk group's on
    average over the follow-up both share (restricted mean survival compared)."""
    by_name = {g.name: g for g in result.groups}
    low, high = by_name.get("low predicted risk"), by_name.get("high predicted risk")
    if low is None or high is None:
        return False
    horizon = min(float(low.time[-1]), float(high.time[-1]))
    if horizon <= 0:
        return False

    def area(g) -> float:
        t = np.append(np.minimum(g.time, horizon), horizon)
        s = np.append(g.survival, g.survival[-1])
        return float(np.sum(np.diff(t) * s[:-1]))

    return area(high) > area(low)


def _explanation(store: Path, run) -> tuple[pd.DataFrame, str]:
    """Hazard ratios (cox) or mean |SHAP| (XGBoost models) of a stored fitted model."""
    from immunodig.evaluation.explain import cox_hazard_ratios, shap_values
    from immunodig.models.matrix import model_matrix
    from immunodig.models.persistence import load_model
    from immunodig.provenance import file_sha256

    path = Path(run.model_file) if isinstance(run.model_file, str) else None
    if path is None or not path.is_file():
        raise SectionUnavailable(f"model file of {run.model_run_id} not found")
    if run.model_sha256 and file_sha256(path) != run.model_sha256:
        raise SectionUnavailable(f"model file of {run.model_run_id} changed since it was "
                                 "recorded (SHA-256 differs); refit")
    pipe, meta = load_model(path)
    if hasattr(pipe[-1], "hazard_ratios"):
        return cox_hazard_ratios(pipe), "hazard_ratios"
    if hasattr(pipe[-1], "booster_"):
        X = model_matrix(store, meta["features"], meta["outcome"]).to_pandas()[meta["features"]]
        return mean_abs_shap(shap_values(pipe, X)), "shap"
    raise SectionUnavailable(f"model {run.model!r}: explanations are drawn for cox (hazard "
                             "ratios) and XGBoost models (SHAP)")


def explanation_section(store: Path) -> Section:
    """SHAP importance or hazard-ratio forest plots of the latest fitted models."""
    runs = model_runs(store, "fit").head(MAX_RUNS)
    sec = Section("explanations", "What the fitted models use (SHAP, hazard ratios)",
                  "Models fitted on all patients. Explanations are descriptive and unstable in "
                  "small cohorts; they are not evidence of performance (see the nested CV).")
    for run in runs.itertuples():
        try:
            table, kind = _explanation(store, run)
        except ImmunodigError as exc:
            sec.notes.append(f"{_run_label(run)}: not available: {exc}")
            continue
        fig = new_figure((6.5, 0.28 * min(len(table), 20) + 1.6))
        ax = fig.add_subplot()
        if kind == "hazard_ratios":
            plot_hazard_ratios(table, ax=ax, title=f"{run.model}: hazard ratio per SD (95% CI)")
        else:
            plot_importance(table, ax=ax, title=f"{run.model}: mean |SHAP| (training data)")
        sec.figures.append(FigureItem(png_data_uri(fig), _run_label(run), kind))
    if not sec.figures:
        raise SectionUnavailable("; ".join(sec.notes) or "no fitted model")
    return sec


def comparison_section(store: Path) -> Section:
    """Feature sets evaluated with the same model, outcome and CV splits, side by side."""
    runs = model_runs(store, "evaluate")
    sec = Section("comparison", "Feature-set comparison",
                  "Runs sharing model, outcome and splits key (identical CV partitions). "
                  "Overlapping intervals are not a test; see `compare_feature_sets` for paired "
                  "differences.")
    for (model, outcome, key), grp in runs.groupby(["model", "outcome", "splits_key"],
                                                   dropna=True):
        if grp["feature_set"].nunique() < 2:
            continue
        metric = "auc" if grp["task"].iloc[0] == "classification" else "c_index"
        rows = []
        for run in grp.itertuples():
            est = _metrics(store, run.model_run_id).get(metric)
            if est and est[0] is not None:
                rows.append({"feature_set": run.feature_set, "estimate": est[0],
                             "ci_low": est[1] if est[1] is not None else np.nan,
                             "ci_high": est[2] if est[2] is not None else np.nan})
        if len(rows) < 2:
            continue
        fig = new_figure((6.0, 0.5 * len(rows) + 1.6))
        plot_feature_set_comparison(pd.DataFrame(rows), ax=fig.add_subplot(),
                                    metric="AUC" if metric == "auc" else "Harrell's C",
                                    title=f"{model} · {outcome}")
        sec.figures.append(FigureItem(png_data_uri(fig), f"{model}, {outcome}, splits {key}",
                                      "feature-set comparison"))
    if not sec.figures:
        raise SectionUnavailable("no two feature sets evaluated with the same model, outcome "
                                 "and splits; run `evaluate --features clinical` and "
                                 "`--features combined` with the same seed")
    return sec


def _pretty(text) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True)
    except (TypeError, ValueError):
        return str(text)


def provenance_section(store: Path) -> Section:
    """Build runs (code version, config, model hashes) and model runs of the store."""
    from immunodig import __version__
    from immunodig.store import query

    runs = query(store, """
        select r.run_id, r.code_version, r.status, r.started_at, r.finished_at,
               r.config_hash, r.config_json, r.model_hashes_json,
               (select count(*) from slide_status s where s.run_id = r.run_id
                  and s.status = 'done') as slides_done
        from runs r order by r.started_at
    """).to_pandas()
    sec = Section("provenance", "Run provenance",
                  f"Report made by immunodig {__version__} from {Path(store).name}.")
    sec.tables.append(TableItem("build runs", ["run_id", "code version", "status", "started",
                                               "finished", "slides done", "config hash"],
                                [[r.run_id, str(r.code_version), str(r.status), str(r.started_at),
                                  str(r.finished_at), str(r.slides_done),
                                  str(r.config_hash)[:16]] for r in runs.itertuples()]))
    for r in runs.itertuples():
        sec.details.append((f"{r.run_id}: config and model hashes",
                            f"config:\n{_pretty(r.config_json)}\n\nmodel files (SHA-256):\n"
                            f"{_pretty(r.model_hashes_json)}"))
    try:
        models = query(store, "select model_run_id, kind, model, outcome, feature_set, "
                              "n_patients, validation, code_version, data_sha256, model_sha256, "
                              "created_at from model_runs order by created_at").to_pandas()
    except QueryError:
        models = pd.DataFrame()
    if not models.empty:
        sec.tables.append(TableItem(
            "model runs", ["model_run_id", "kind", "model", "outcome", "features", "patients",
                           "validation", "code version", "data SHA-256", "model SHA-256",
                           "created"],
            [[m.model_run_id, m.kind, m.model, m.outcome, m.feature_set, str(m.n_patients),
              m.validation, m.code_version, str(m.data_sha256)[:16],
              str(m.model_sha256)[:16] if isinstance(m.model_sha256, str) else "-",
              str(m.created_at)] for m in models.itertuples()]))
    return sec
