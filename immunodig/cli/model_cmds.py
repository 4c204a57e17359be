"""Commands ``fit``, ``evaluate`` and ``predict`` (thin wrappers over immunodig.evaluation)."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from immunodig.errors import ConfigError

MODEL_HELP = "logistic | xgboost (resistance); cox | xgb-cox | xgb-aft (pfs)"
EVALUATE_MODEL_HELP = MODEL_HELP + "; abmil | transmil | meanpool | maxpool (MIL on tile embeddings, --store)"


#: Options shared by the modelling commands (one definition each).
TableOption = Annotated[Optional[Path], typer.Option("--table", help="CSV or Parquet table")]
IdOption = Annotated[Optional[str], typer.Option("--id", help="patient id column (--table)")]
LabelOption = Annotated[Optional[str], typer.Option("--label", help="binary 0/1 outcome column")]
TimeOption = Annotated[Optional[str], typer.Option("--time", help="follow-up time column")]
EventOption = Annotated[Optional[str], typer.Option("--event", help="event 0/1 column")]
StoreOption = Annotated[Optional[Path], typer.Option("--store", help="DuckDB store")]
RepeatsOption = Annotated[int, typer.Option(help="outer CV repeats")]
FoldsOption = Annotated[int, typer.Option(help="outer CV folds")]
InnerFoldsOption = Annotated[int, typer.Option(help="inner CV folds")]
NBootOption = Annotated[int, typer.Option(help="bootstrap replicates for CIs")]
CovariatesOption = Annotated[
    Optional[str], typer.Option("--covariates", help="comma-separated covariates (default: all other columns)")
]


def _ci(lo: float, hi: float, fmt: str = ".3f") -> str:
    """``95% CI lo-hi``, or why there is none (NaN bounds: undefined, see the JSON notes)."""
    if math.isnan(lo) or math.isnan(hi):
        return "no 95% CI: undefined here, see the JSON notes"
    return f"95% CI {lo:{fmt}}-{hi:{fmt}}"


def _with_input_warnings(command):
    """Show every :class:`InputWarning` of ``command`` as one ``warning (Class): ...`` line on
    stderr (also when the command then fails); other warnings are passed on unchanged."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        import warnings

        from immunodig.errors import InputWarning

        caught: list = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", InputWarning)
                return command(*args, **kwargs)
        finally:
            # Replayed after the recording context: inside it, showwarning appends to `caught`.
            for w in caught:
                if issubclass(w.category, InputWarning):
                    typer.echo(f"warning ({w.category.__name__}): {w.message}", err=True)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)

    return run


#: Options of the MIL models (``evaluate`` / ``compare`` with tile embeddings).
EncoderShaOption = Annotated[
    Optional[str],
    typer.Option("--encoder-sha256", help="MIL: encoder (hash or unique prefix) when the store holds several"),
]
MilParamOption = Annotated[
    Optional[list[str]],
    typer.Option("--mil-param", help="MIL hyper-parameter KEY=VALUE (repeatable: epochs, lr, weight_decay, ...)"),
]
ClinicalFusionOption = Annotated[
    bool, typer.Option("--clinical-fusion", help="MIL: fuse the clinical covariates late (before the output layer)")
]


def _mil_params(items: list[str] | None) -> dict:
    """``["epochs=20", "lr=0.003"]`` -> ``{"epochs": 20, "lr": 0.003}`` (numbers parsed)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--mil-param must be KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--mil-param {item!r}: value is not a number") from exc
    return out


def _features(value: str):
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items[0] if len(items) == 1 else items


def _print_summary(summary: dict) -> None:
    if "auc" in summary:
        line = f"ROC AUC {summary['auc']:.3f} ({_ci(*summary['auc_ci'])})"
        if "pr_auc" in summary:
            line += (
                f", PR AUC {summary['pr_auc']:.3f}, Brier {summary['brier']:.3f}, "
                f"calibration slope {summary['calibration']['slope']:.2f}"
            )
    else:
        line = f"Harrell's C {summary['c_index']:.3f} ({_ci(*summary['c_index_ci'])}), Uno's C {summary['uno_c']:.3f}"
        if "integrated_brier" in summary:
            line += f", integrated Brier {summary['integrated_brier']:.3f}"
        cal = summary.get("calibration", {})
        if "slope" in cal:
            line += f", calibration slope {cal['slope']:.2f}"
        if "horizon" in cal:
            line += (
                f"; risk by t={cal['horizon']:.3g}: predicted {cal['mean_predicted']:.2f}, "
                f"observed {cal['observed_rate']:.2f}"
            )
    typer.echo(f"{summary['model']}: n={summary['n']} patients, {summary['n_events']} events; {line}")
    if summary.get("n_dropped_missing_outcome"):
        typer.echo(f"  {summary['n_dropped_missing_outcome']} row(s) without outcome dropped")
    if summary.get("uninformative_features"):
        typer.echo(f"  left out (constant or entirely missing): {', '.join(summary['uninformative_features'])}")
    if summary.get("n_patients_with_several_rows"):
        typer.echo(
            f"  {summary['n_rows']} rows for {summary['n']} patients: "
            f"{summary['n_patients_with_several_rows']} patient(s) with several rows, "
            "each scored once (mean of its rows)"
        )
    if summary.get("excluded_outcome_columns"):
        typer.echo(f"  outcome columns not used as covariates: {', '.join(summary['excluded_outcome_columns'])}")
    if "permutation_test" in summary:
        pt = summary["permutation_test"]
        typer.echo(f"  permutation test ({pt['n_permutations']} permutations): p = {pt['p']:.3f}")
    s = summary["splits"]
    inner = f", {s['inner_splits']}-fold inner" if "inner_splits" in s else ""
    typer.echo(
        f"  validation: {summary['validation']}; {s['n_repeats']}x{s['n_splits']}-fold outer{inner}, seed {s['seed']}"
    )


def _split(value: Optional[str]) -> Optional[list[str]]:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _print_external(s: dict) -> None:
    if "auc" in s:
        line = (
            f"ROC AUC {s['auc']:.3f} ({_ci(*s['auc_ci'])}), Brier {s['brier']:.3f}, "
            f"calibration slope {s['calibration']['slope']:.2f}, intercept "
            f"{s['calibration']['intercept']:.2f}"
        )
    else:
        cal = s["calibration"]
        line = (
            f"Harrell's C {s['c_index']:.3f} ({_ci(*s['c_index_ci'])}), calibration slope "
            f"{cal['slope']:.2f}, observed/expected events {cal['o_e_ratio']:.2f}"
        )
    typer.echo(f"{s['model']}: n={s['n']} patients, {s['n_events']} events; {line}")
    typer.echo(f"  validation: {s['validation']}")


def _print_sample_size(plan: dict) -> None:
    crit = ", ".join(f"{c['criterion']}: {c['required_n']}" for c in plan["criteria"])
    typer.echo(
        f"sample size (Riley): {plan['n']} patients, {plan['events']} events, "
        f"{plan['parameters']} parameters; required n by criterion {crit} "
        f"(R2_CS {plan['r2_cs']:.3f}, {plan['r2_cs_source']}); about "
        f"{plan['max_parameters']} parameter(s) supported"
    )
    if plan.get("warning"):
        typer.echo(f"  WARNING: {plan['warning']}")


def _floats(value: Optional[str]) -> Optional[list[float]]:
    try:
        return [float(v) for v in _split(value)] if value else None
    except ValueError as exc:
        raise ConfigError(f"expected comma-separated numbers, got {value!r}") from exc


def _write_json(data: dict, path: Path) -> None:
    from immunodig.evaluation.results import json_safe

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(data), indent=2, default=str, allow_nan=False))
    typer.echo(f"  summary written to {path}")


def register(app: typer.Typer) -> None:
    """Add the modelling commands to ``app``."""

    @app.command("evaluate")
    @_with_input_warnings
    def evaluate(
        model: Annotated[Optional[str], typer.Option(help=EVALUATE_MODEL_HELP)] = None,
        model_file: Annotated[
            Optional[Path],
            typer.Option(
                help="external validation: a model written by `fit`, scored "
                "unchanged on --table (a cohort it never saw)"
            ),
        ] = None,
        table: TableOption = None,
        id_col: IdOption = None,
        label: LabelOption = None,
        time: TimeOption = None,
        event: EventOption = None,
        covariates: CovariatesOption = None,
        store: StoreOption = None,
        outcome: Annotated[Optional[str], typer.Option(help="resistance | pfs")] = None,
        features: Annotated[
            str,
            typer.Option(help="clinical|morphology|genomic|multiplex|combined|all|prespecified, "
                              "or comma-separated sets/columns"),
        ] = "combined",
        json_out: Annotated[Optional[Path], typer.Option("--json", help="write the summary here")] = None,
        repeats: RepeatsOption = 5,
        folds: FoldsOption = 5,
        inner_folds: InnerFoldsOption = 3,
        seed: Annotated[int, typer.Option()] = 0,
        n_boot: NBootOption = 1000,
        permutations: Annotated[int, typer.Option(help="add a permutation test (reruns the CV N times)")] = 0,
        horizons: Annotated[
            Optional[str],
            typer.Option(
                help="survival: comma-separated times for time-dependent AUC, "
                "calibration and RMST (default: event-time quartiles)"
            ),
        ] = None,
        encoder_sha256: EncoderShaOption = None,
        mil_param: MilParamOption = None,
        clinical_fusion: ClinicalFusionOption = False,
        oof_file: Annotated[
            Optional[Path],
            typer.Option(
                help="--store: score out-of-fold predictions made outside immunodig (CSV/Parquet "
                "patient_id, repeat, fold, prediction[, train_cut]) on the splits of `splits`"
            ),
        ] = None,
        name: Annotated[str, typer.Option(help="--oof-file: model name to record")] = "external",
    ) -> None:
        """Nested cross-validation (internal validation) of a model on a table or the store, or
        with ``--model-file`` external validation of a fitted model on another cohort's table.
        MIL models (``--model abmil`` ...) run on the store's tile embeddings; ``--features`` does
        not apply to them (``--clinical-fusion`` adds the clinical covariates)."""
        from immunodig.evaluation.tabular import Outcome, evaluate_table, read_table
        from immunodig.evaluation.workflow import evaluate_store
        from immunodig.vocab import MIL_MODELS

        if oof_file is not None:
            from immunodig.evaluation.workflow import evaluate_store_oof

            if store is None or outcome is None or model is not None or model_file is not None:
                raise ConfigError("--oof-file needs --store and --outcome, and no --model / --model-file")
            summary = evaluate_store_oof(
                store, outcome, oof_file, name, n_splits=folds, n_repeats=repeats, seed=seed, n_boot=n_boot
            )
            _print_summary(summary)
            if json_out is not None:
                _write_json(summary, json_out)
            return
        if (model is None) == (model_file is None):
            raise ConfigError("give exactly one of --model (cross-validation) or --model-file (external validation)")
        if model_file is not None:
            from immunodig.evaluation.external import external_validation
            from immunodig.models.persistence import load_model

            if table is None:
                raise ConfigError("--model-file needs --table (the validation cohort)")
            pipe, meta = load_model(model_file)
            cols = meta.get("outcome_columns") or {}
            target = Outcome(
                label=label or cols.get("label"), time=time or cols.get("time"), event=event or cols.get("event")
            )
            summary = external_validation(
                pipe,
                meta,
                read_table(table),
                id_col or meta.get("id_column", "patient_id"),
                target,
                n_boot=n_boot,
                seed=seed,
                horizons=_floats(horizons),
                source=str(table),
            )
            _print_external(summary)
            if json_out is not None:
                _write_json(summary, json_out)
            return

        cv = {
            "n_splits": folds,
            "n_repeats": repeats,
            "seed": seed,
            "n_boot": n_boot,
            "inner_splits": inner_folds,
            "permutations": permutations,
        }
        if (table is None) == (store is None):
            raise ConfigError("give exactly one of --table or --store")
        if model in MIL_MODELS:
            from immunodig.mil.store_evaluation import evaluate_store_mil

            if store is None or outcome is None:
                raise ConfigError(f"--model {model} runs on tile embeddings: give --store and --outcome resistance|pfs")
            if permutations:
                raise ConfigError("--permutations is not available for MIL models")
            summary = evaluate_store_mil(
                store,
                outcome,
                model,
                clinical=clinical_fusion,
                encoder_sha256=encoder_sha256,
                n_splits=folds,
                n_repeats=repeats,
                seed=seed,
                n_boot=n_boot,
                inner_splits=inner_folds,
                **_mil_params(mil_param),
            )
        elif table is not None:
            if id_col is None or (label is None) == (time is None or event is None):
                raise ConfigError("--table needs --id and either --label or --time and --event")
            summary, _ = evaluate_table(
                read_table(table),
                id_col,
                Outcome(label=label, time=time, event=event),
                model,
                _split(covariates),
                source=str(table),
                horizons=_floats(horizons),
                **cv,
            )
        else:
            if outcome is None:
                raise ConfigError("--store needs --outcome resistance|pfs")
            summary = evaluate_store(store, outcome, _features(features), model, horizons=_floats(horizons), **cv)
        _print_summary(summary)
        if json_out is not None:
            _write_json(summary, json_out)

    @app.command("fit")
    @_with_input_warnings
    def fit(
        model: Annotated[str, typer.Option(help=MODEL_HELP)] = ...,
        store: StoreOption = None,
        outcome: Annotated[Optional[str], typer.Option(help="resistance | pfs (--store)")] = None,
        features: Annotated[str, typer.Option(help="feature set(s) (--store)")] = "combined",
        table: TableOption = None,
        id_col: IdOption = None,
        label: LabelOption = None,
        time: TimeOption = None,
        event: EventOption = None,
        covariates: CovariatesOption = None,
        reference: Annotated[
            Optional[list[str]],
            typer.Option(
                help="COLUMN=LEVEL reference level of a categorical covariate "
                "(repeatable; default: alphabetically first level)"
            ),
        ] = None,
        categorical: Annotated[
            Optional[str], typer.Option(help="comma-separated numeric columns to treat as categories")
        ] = None,
        per_sd: Annotated[bool, typer.Option(help="hazard ratios per SD, not per unit")] = False,
        r2_cs: Annotated[
            Optional[float],
            typer.Option(
                "--r2", help="anticipated Cox-Snell R2 for the sample-size criteria (default 0.15 x its maximum)"
            ),
        ] = None,
        out: Annotated[Optional[Path], typer.Option(help="model file (.joblib)")] = None,
        json_out: Annotated[Optional[Path], typer.Option("--json", help="write the fit summary here")] = None,
        seed: Annotated[int, typer.Option()] = 0,
    ) -> None:
        """Fit a model on all patients and save it with its metadata (no validation: see
        ``evaluate`` for the performance of this procedure). With ``--model cox`` the summary
        holds hazard ratios and the proportional-hazards test of an unpenalised inference fit."""
        import warnings

        from immunodig.errors import SampleSizeWarning
        from immunodig.evaluation.tabular import Outcome, read_table
        from immunodig.evaluation.workflow import fit_store, fit_table

        if (table is None) == (store is None):
            raise ConfigError("give exactly one of --table or --store")
        if table is not None:
            if id_col is None or (label is None) == (time is None or event is None):
                raise ConfigError("--table needs --id and either --label or --time and --event")
            refs = {}
            for item in reference or []:
                col, sep, level = item.partition("=")
                if not sep or not col or not level:
                    raise ConfigError(f"--reference expects COLUMN=LEVEL, got {item!r}")
                refs[col.strip()] = level.strip()
            out = out or Path(f"{model}_{table.stem}.joblib")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SampleSizeWarning)  # _print_sample_size shows it
                meta = fit_table(
                    read_table(table),
                    id_col,
                    Outcome(label=label, time=time, event=event),
                    model,
                    out,
                    _split(covariates),
                    seed=seed,
                    reference=refs,
                    categorical=_split(categorical),
                    per_sd=per_sd,
                    source=str(table),
                    r2_cs=r2_cs,
                    on_sample_size=_print_sample_size,
                )
            what = table.name
        else:
            if outcome is None:
                raise ConfigError("--store needs --outcome resistance|pfs")
            out = out or Path(f"{model}_{outcome}_{features.replace(',', '+')}.joblib")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SampleSizeWarning)
                meta = fit_store(
                    store, outcome, _features(features), model, out, seed=seed, on_sample_size=_print_sample_size
                )
            what = outcome
        typer.echo(
            f"fitted {model} for {what} on {meta['n_patients']} patients "
            f"({len(meta['features'])} features) -> {meta['model_file']}"
        )
        typer.echo(f"  hyper-parameters (grouped CV): {meta['params']}")
        if "error" in meta.get("inference", {}):
            typer.echo(f"  hazard ratios: {meta['inference']['error']}")
        for row in meta.get("hazard_ratios", []):
            level = f"{row['level']} vs {row['reference']}" if row["level"] else row["unit"]
            typer.echo(
                f"  HR {row['term']} ({level}): {row['hr']:.3g} "
                f"({row['ci_low']:.3g}-{row['ci_high']:.3g}), p = {row['p']:.2g}"
            )
        if json_out is not None:
            _write_json(meta, json_out)

    @app.command("compare")
    @_with_input_warnings
    def compare(
        model: Annotated[str, typer.Option(help=MODEL_HELP)] = ...,
        table: TableOption = None,
        id_col: IdOption = None,
        label: LabelOption = None,
        time: TimeOption = None,
        event: EventOption = None,
        sets: Annotated[
            Optional[list[str]],
            typer.Option(
                "--set",
                help="NAME=COL1,COL2 (repeatable, --table); a token naming an earlier set stands for its columns",
            ),
        ] = None,
        store: StoreOption = None,
        outcome: Annotated[Optional[str], typer.Option(help="resistance | pfs")] = None,
        store_sets: Annotated[
            str, typer.Option("--sets", help="feature sets of the store (--store)")
        ] = "clinical,morphology,combined",
        reference: Annotated[
            Optional[str], typer.Option(help="set the others are compared with (default: first)")
        ] = None,
        json_out: Annotated[Optional[Path], typer.Option("--json", help="write the result here")] = None,
        repeats: RepeatsOption = 5,
        folds: FoldsOption = 5,
        inner_folds: InnerFoldsOption = 3,
        seed: Annotated[int, typer.Option()] = 0,
        n_boot: NBootOption = 1000,
        mil: Annotated[
            Optional[str],
            typer.Option(help="--store: add MIL models on the tile embeddings, e.g. abmil,meanpool"),
        ] = None,
        encoder_sha256: EncoderShaOption = None,
        mil_param: MilParamOption = None,
        clinical_fusion: ClinicalFusionOption = False,
    ) -> None:
        """Does a feature set add value? Nested CV of each set on identical splits, paired
        per-fold differences from the reference with the corrected resampled t-test. With
        ``--mil`` the MIL models on tile embeddings join the same table and splits."""
        from immunodig.evaluation.tabular import Outcome, read_table
        from immunodig.evaluation.workflow import compare_store, compare_table, parse_feature_sets

        cv = {"n_splits": folds, "n_repeats": repeats, "seed": seed, "n_boot": n_boot, "inner_splits": inner_folds}
        if (table is None) == (store is None):
            raise ConfigError("give exactly one of --table or --store")
        if table is not None:
            if id_col is None or (label is None) == (time is None or event is None):
                raise ConfigError("--table needs --id and either --label or --time and --event")
            result = compare_table(
                read_table(table),
                id_col,
                Outcome(label=label, time=time, event=event),
                model,
                parse_feature_sets(sets or []),
                reference,
                source=str(table),
                **cv,
            )
        else:
            if outcome is None:
                raise ConfigError("--store needs --outcome resistance|pfs")
            mil_options = {"encoder_sha256": encoder_sha256, "clinical": clinical_fusion, **_mil_params(mil_param)}
            result = compare_store(
                store,
                outcome,
                model,
                tuple(_split(store_sets)),
                reference or _split(store_sets)[0],
                mil=tuple(_split(mil)) if mil else (),
                mil_options=mil_options,
                **cv,
            )
        metric = result["metric"]
        for name, r in result["sets"].items():
            typer.echo(f"{name}: {metric} {r[metric]:.3f} ({_ci(*r[f'{metric}_ci'])}), {r['n_features']} features")
        for name, d in result["differences"].items():
            lo, hi = d["ci_corrected"]
            typer.echo(
                f"{name}: {d['fold_mean']:+.3f} (corrected 95% CI {lo:+.3f} to {hi:+.3f}), "
                f"corrected resampled t-test p = {d['p_corrected']:.3g}"
            )
        typer.echo(f"  validation: {result['validation']}; n={result['n']} patients")
        if json_out is not None:
            _write_json(result, json_out)

    @app.command("splits")
    def splits(
        store: Annotated[Path, typer.Option("--store", help="DuckDB store")] = ...,
        outcome: Annotated[str, typer.Option(help="resistance | pfs")] = ...,
        out: Annotated[Path, typer.Option(help="CSV of patient_id, repeat, fold (the test fold)")] = ...,
        repeats: RepeatsOption = 5,
        folds: FoldsOption = 5,
        seed: Annotated[int, typer.Option()] = 0,
    ) -> None:
        """Export the outer CV folds every `evaluate --store` run with these settings uses, so a
        model trained elsewhere (e.g. on a GPU) can be scored on identical patient partitions
        with `evaluate --oof-file`."""
        from immunodig.evaluation.workflow import splits_store
        from immunodig.io import atomic_path

        frame, key = splits_store(store, outcome, n_splits=folds, n_repeats=repeats, seed=seed)
        with atomic_path(out) as tmp:
            frame.write_csv(tmp)
        typer.echo(f"{frame['patient_id'].n_unique()} patients, {repeats} x {folds}-fold, seed {seed}: "
                   f"splits_key {key} written to {out}")

    @app.command("predict")
    @_with_input_warnings
    def predict(
        model_file: Annotated[Path, typer.Option("--model", help="file written by `fit`")] = ...,
        store: StoreOption = None,
        table: TableOption = None,
        id_col: Annotated[str, typer.Option("--id", help="patient id column (--table)")] = "patient_id",
        out: Annotated[Optional[Path], typer.Option(help="CSV of predictions")] = None,
    ) -> None:
        """Apply a saved model to the store's patients or to a table."""
        from immunodig.evaluation.workflow import predict as run_predict

        df = run_predict(model_file, store_path=store, table=table, id_col=id_col)
        if out is not None:
            df.to_csv(out, index=False)
            typer.echo(f"{len(df)} predictions written to {out}")
        else:
            typer.echo(df.to_csv(index=False), nl=False)
