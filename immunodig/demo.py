"""The end-to-end demo: generated cohort -> features -> store -> clinical -> models -> report.

``python cli.py demo --out DIR`` runs it; every step is an ordinary package call, so the demo is
also the reference for chaining the stages in a script.

The cohort is built to show what the package is for: enough patients and events for the planted
effect (docs/synthetic.md) to be found with a confidence interval that excludes chance; one small
H&E slide per patient laid out so that every feature family exists (tumour core and invasive
margin, lymphoid aggregates, CD3 serial sections for about a third of the patients); and the
pre-specified feature set (:data:`immunodig.models.matrix.PRESPECIFIED_FEATURES`) evaluated beside
the full sets and an attention-MIL model on the tile embeddings. The slides are miniatures
(1.2 mm; a resection section is 15-25 mm), so the invasive margin is scaled with them
(:data:`DEMO_MARGIN_UM` instead of the default 500 µm); everything else is the default build.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from immunodig.config import BuildConfig

#: The query printed at the end: patient-level TIL density next to the outcome.
EXAMPLE_QUERY = """\
select p.patient_id,
       round(max(f.value) filter (where f.feature = 'til_density_intraepithelial_per_mm2'), 1)
           as til_intraepithelial_per_mm2,
       round(max(f.value) filter (where f.feature = 'tsr_stroma_fraction'), 3) as tsr_stroma,
       any_value(o.primary_resistance) as primary_resistance,
       any_value(o.pfs_months) as pfs_months
from patients p
left join patient_features_long f on f.patient_id = p.patient_id
left join outcomes o on o.patient_id = p.patient_id
group by p.patient_id
order by p.patient_id
limit 10"""

#: Patients and slide side of the demo cohort.
DEMO_PATIENTS = 60
DEMO_SLIDE_MM = 1.2
#: Half-width of the invasive margin on the demo's miniature slides (default build: 500 µm).
DEMO_MARGIN_UM = 100.0
#: (outcome, model) pairs evaluated by the demo, each on every feature set.
DEMO_MODELS: tuple[tuple[str, str], ...] = (("resistance", "logistic"), ("pfs", "cox"))
DEMO_FEATURE_SETS: tuple[str, ...] = ("clinical", "prespecified", "morphology", "combined")
#: The attention-MIL model run on the tile embeddings (both outcomes).
DEMO_MIL_MODEL = "abmil"


@dataclass
class DemoResult:
    """Paths and headline numbers of a demo run."""

    store: Path
    cohort_dir: Path
    report: Path | None = None
    metrics: list[dict] = field(default_factory=list)
    #: Wall seconds of each step, in order.
    step_seconds: dict[str, float] = field(default_factory=dict)
    #: Patients, slides and events of the cohort.
    cohort: dict[str, int] = field(default_factory=dict)
    #: Shares of slides / patients showing each feature family (:func:`feature_coverage`).
    coverage: dict[str, float] = field(default_factory=dict)


class _Steps:
    """Numbered progress lines with the wall time of each step."""

    def __init__(self, n: int, log: Callable[[str], None], seconds: dict[str, float]) -> None:
        self.n, self.log, self.seconds = n, log, seconds
        self.k, self.name, self.t0 = 0, "", 0.0

    def start(self, name: str, what: str) -> None:
        self.stop()
        self.k += 1
        self.name, self.t0 = name, time.monotonic()
        self.log(f"{self.k}/{self.n} {what} ...")

    def stop(self) -> None:
        if self.name:
            self.seconds[self.name] = round(time.monotonic() - self.t0, 1)
            self.log(f"    {self.name}: {self.seconds[self.name]:.1f} s")
            self.name = ""


def run_demo(out_dir: str | Path, n_patients: int = DEMO_PATIENTS, seed: int = 7,
             slide_mm: float = DEMO_SLIDE_MM, workers: int = 2, n_splits: int = 5,
             n_repeats: int = 2, inner_splits: int = 3, mil: bool = True,
             show_progress: bool = True, log: Callable[[str], None] = print) -> DemoResult:
    """Run every stage on a generated cohort and return where things went.

    Parameters
    ----------
    out_dir : path
        Output folder; the store is ``out_dir/immunodig.duckdb``, the report
        ``out_dir/immunodig.html``.
    n_patients, seed, slide_mm : int, int, float
        Size and seed of the generated cohort (:data:`immunodig.synthetic.design.DEMO_DESIGN`).
    workers : int
        Local worker processes for synth-cohort and build-features.
    n_splits, n_repeats, inner_splits : int
        Outer and inner cross-validation of the demo's models (a real cohort uses the defaults of
        :func:`immunodig.evaluation.workflow.evaluate_store`).
    mil : bool
        Embed the tiles and evaluate :data:`DEMO_MIL_MODEL` beside the tabular models.
    log : callable
        Where progress lines go.
    """
    from immunodig.clinical import import_clinical
    from immunodig.evaluation.workflow import evaluate_store, fit_store
    from immunodig.pipeline.build import build_features
    from immunodig.report import build_report
    from immunodig.synthetic import make_cohort
    from immunodig.synthetic.design import DEMO_DESIGN

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "immunodig.duckdb"
    result = DemoResult(store=store, cohort_dir=out / "cohort")
    steps = _Steps(6, log, result.step_seconds)
    cv = {"n_splits": n_splits, "n_repeats": n_repeats, "seed": seed, "n_boot": 500}

    steps.start("synth-cohort", f"generating {n_patients} patients (seed {seed})")
    cohort = make_cohort(out / "cohort", n_patients=n_patients, seed=seed, slide_mm=slide_mm,
                         workers=workers, design=DEMO_DESIGN)

    steps.start("build-features", "build-features (tissue classes, nuclei, slide features"
                + (", tile embeddings)" if mil else ")"))
    cfg = BuildConfig(margin_um=DEMO_MARGIN_UM, embeddings=mil)
    summary = build_features([cohort.slides_dir], store, cfg, manifest=cohort.manifest,
                             workers=workers, show_progress=show_progress)
    if not summary.ok:
        reasons = sorted({o.reason or "failed" for o in summary.failed})
        raise RuntimeError(f"demo: {len(summary.failed)} generated slide(s) failed ({reasons}); "
                           f"see {summary.work_dir}/*/failure.json")
    flagged = sum(bool(o.flags) for o in summary.outcomes)
    log(f"    {summary.count('done')} slides built, {summary.count('skipped')} already valid, "
        f"{flagged} flagged by QC; wall s per stage (summed over slides): "
        + ", ".join(f"{k} {v:.0f}" for k, v in summary.stage_seconds().items()))

    steps.start("import-clinical", "import-clinical")
    import_clinical(cohort.clinical_csv, store)
    result.cohort = cohort_counts(store)
    c = result.cohort
    log(f"    {c['patients']} patients, {c['he_slides']} H&E + {c['ihc_slides']} CD3 slides; "
        f"{c['resistant']} primary resistant, {c['pfs_events']} PFS events")
    result.coverage = feature_coverage(store)
    log("    tumour core on {slides_with_core:.0%} of H&E slides, TLS on {slides_with_tls:.0%}, "
        "patient-level CD3 densities for {cd3_patients_with_density:.0%} of CD3 patients"
        .format(**result.coverage))

    steps.start("evaluate", "nested cross-validation (internal validation, patient-grouped)")
    for outcome, model in DEMO_MODELS:
        for features in DEMO_FEATURE_SETS:
            result.metrics.append(evaluate_store(store, outcome, features, model,
                                                 inner_splits=inner_splits, **cv))
    if mil:
        from immunodig.mil.store_evaluation import evaluate_store_mil

        for outcome, _ in DEMO_MODELS:
            result.metrics.append(evaluate_store_mil(store, outcome, DEMO_MIL_MODEL, **cv))

    steps.start("fit", "fit the pre-specified models on all patients (SHAP, hazard ratios)")
    for outcome, model in DEMO_MODELS:
        fit_store(store, outcome, "prespecified", model,
                  out / "models" / f"{model}_{outcome}_prespecified.joblib", seed=seed)

    steps.start("report", "report")
    result.report = build_report(store, out / "immunodig.html").path
    steps.stop()
    return result


def cohort_counts(store: str | Path) -> dict[str, int]:
    """Patients, H&E and IHC slides, resistant patients and PFS events in the store."""
    from immunodig.store import query

    row = query(store, """
        select (select count(*) from patients) as patients,
               (select count(*) from slides where stain = 'HE') as he_slides,
               (select count(*) from slides where stain <> 'HE') as ihc_slides,
               (select count(*) from outcomes where primary_resistance = 1) as resistant,
               (select count(*) from outcomes where pfs_event = 1) as pfs_events""").row(0, named=True)
    return {k: int(v) for k, v in row.items()}


def feature_coverage(store: str | Path) -> dict[str, float]:
    """Which feature families the cohort shows: shares of H&E slides with a tumour core and with a
    TLS candidate, and of CD3-slide patients with patient-level CD3 densities."""
    from immunodig.store import query

    row = query(store, """
        with he as (
            select f.slide_id,
                   max(f.value) filter (where f.feature = 'area_core_mm2') as core_mm2,
                   max(f.value) filter (where f.feature = 'tls_count') as tls
            from slide_features_current f join slides s using (slide_id)
            where s.stain = 'HE' group by f.slide_id),
        cd3 as (select distinct patient_id from slides where stain = 'CD3')
        select (select avg((core_mm2 > 0)::int) from he) as slides_with_core,
               (select avg((tls > 0)::int) from he) as slides_with_tls,
               (select avg((d.cd3_density_intraepithelial_per_mm2 is not null)::int)
                from cd3 join patient_dataset d using (patient_id)) as cd3_patients_with_density
        """).row(0, named=True)
    return {k: float(v) if v is not None else float("nan") for k, v in row.items()}


def format_metrics(metrics: list[dict]) -> str:
    """One line per (outcome, model, feature set): AUC or C-index with its 95 % CI."""
    lines = ["internal validation (repeated nested cross-validation, patient-grouped):"]
    for m in metrics:
        key = "auc" if "auc" in m else "c_index"
        lo, hi = m[f"{key}_ci"]
        name = "AUC" if key == "auc" else "C-index"
        lines.append(f"  {m['outcome']:<10} {m['model']:<8} {m.get('feature_set', '-'):<12} "
                     f"{name} {m[key]:.3f} (95% CI {lo:.3f}-{hi:.3f}), n={m['n']}")
    return "\n".join(lines)
