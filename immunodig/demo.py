"""The end-to-end demo: generated cohort -> features -> store -> clinical -> models -> report.

``python cli.py demo --out DIR`` runs it; every step is an ordinary package call, so the demo is
also the reference for chaining the stages in a script.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from immunodig.config import BuildConfig

#: The query printed at the end: patient-level TIL density next to the outcome.
EXAMPLE_QUERY = """\
select p.patient_id,
       round(max(f.value) filter (where f.feature = 'til_density_tumour_region_per_mm2'), 1)
           as til_density_tumour_per_mm2,
       round(max(f.value) filter (where f.feature = 'prop_stroma'), 3) as prop_stroma,
       any_value(o.primary_resistance) as primary_resistance,
       any_value(o.pfs_months) as pfs_months
from patients p
left join patient_features_long f on f.patient_id = p.patient_id
left join outcomes o on o.patient_id = p.patient_id
group by p.patient_id
order by p.patient_id
limit 10"""

#: (outcome, model) pairs evaluated by the demo, each on every feature set.
DEMO_MODELS: tuple[tuple[str, str], ...] = (("resistance", "logistic"), ("pfs", "cox"))
DEMO_FEATURE_SETS: tuple[str, ...] = ("clinical", "morphology", "combined")


@dataclass
class DemoResult:
    """Paths and headline numbers of a demo run."""

    store: Path
    cohort_dir: Path
    report: Path | None = None
    metrics: list[dict] = field(default_factory=list)


def run_demo(out_dir: str | Path, n_patients: int = 24, seed: int = 7, slide_mm: float = 1.0,
             workers: int = 2, n_splits: int = 3, n_repeats: int = 3, inner_splits: int = 2,
             show_progress: bool = True, log: Callable[[str], None] = print) -> DemoResult:
    """Run every stage on a small generated cohort and return where things went.

    Parameters
    ----------
    out_dir : path
        Output folder; the store is ``out_dir/immunodig.duckdb``, the report
        ``out_dir/immunodig.html``.
    n_patients, seed, slide_mm : int, int, float
        Size and seed of the generated cohort.
    workers : int
        Local worker processes for build-features.
    n_splits, n_repeats, inner_splits : int
        Outer and inner cross-validation of the demo's models (small: the demo cohort is small;
        a real cohort uses the defaults of :func:`immunodig.evaluation.workflow.evaluate_store`).
    log : callable
        Where progress lines go.
    """
    from immunodig.clinical import import_clinical
    from immunodig.evaluation.workflow import evaluate_store
    from immunodig.pipeline.build import build_features
    from immunodig.report import build_report
    from immunodig.synthetic import make_cohort

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log(f"1/5 generating {n_patients} patients (seed {seed}) ...")
    cohort = make_cohort(out / "cohort", n_patients=n_patients, seed=seed, slide_mm=slide_mm,
                         workers=workers)
    store = out / "immunodig.duckdb"
    log("2/5 build-features (tissue classes, nuclei, slide features) ...")
    summary = build_features([cohort.slides_dir], store, BuildConfig(nuclei_backend="classical"),
                             manifest=cohort.manifest, workers=workers,
                             show_progress=show_progress)
    if not summary.ok:
        reasons = sorted({o.reason or "failed" for o in summary.failed})
        raise RuntimeError(f"demo: {len(summary.failed)} generated slide(s) failed ({reasons}); "
                           f"see {summary.work_dir}/*/failure.json")
    log("3/5 import-clinical ...")
    import_clinical(cohort.clinical_csv, store)
    result = DemoResult(store=store, cohort_dir=cohort.root)
    log("4/5 nested cross-validation (internal validation) ...")
    for outcome, model in DEMO_MODELS:
        for features in DEMO_FEATURE_SETS:
            s = evaluate_store(store, outcome, features, model, n_splits=n_splits,
                               n_repeats=n_repeats, inner_splits=inner_splits, seed=seed,
                               n_boot=500)
            result.metrics.append(s)
    log("5/5 report ...")
    result.report = build_report(store, out / "immunodig.html").path
    return result


def format_metrics(metrics: list[dict]) -> str:
    """One line per (outcome, feature set): AUC or C-index with its 95 % CI."""
    lines = ["internal validation (repeated nested cross-validation, patient-grouped):"]
    for m in metrics:
        key = "auc" if "auc" in m else "c_index"
        lo, hi = m[f"{key}_ci"]
        name = "AUC" if key == "auc" else "C-index"
        lines.append(f"  {m['outcome']:<10} {m['model']:<8} {m['feature_set']:<11} "
                     f"{name} {m[key]:.3f} (95% CI {lo:.3f}-{hi:.3f}), n={m['n']}")
    return "\n".join(lines)
