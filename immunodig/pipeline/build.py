"""``build-features``: slides -> per-slide artefacts -> the store.

Workers (any executor) only write per-slide folders; this driver is the single writer that loads
finished folders into the DuckDB store, one transaction per slide. A rerun with the same inputs,
config and models finds valid folders, skips them and re-ingests idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from immunodig import __version__
from immunodig import slide_folder as sf
from immunodig.config import BuildConfig
from immunodig.errors import BuildInterrupted, ConfigError, ModelFileError
from immunodig.pipeline.discovery import discover_slides, make_jobs, read_slide_manifest, refuse_duplicate_content
from immunodig.pipeline.interrupt import interrupt_on_signals
from immunodig.pipeline.slide_job import RunContext, SlideJob, SlideOutcome, result_key, run_slide_job
from immunodig.pipeline.slide_qc import qc_rules
from immunodig.progress import progress
from immunodig.provenance import file_sha256, run_key

if TYPE_CHECKING:
    from immunodig.compute.slurm import SlurmOptions


@dataclass
class BuildSummary:
    """What a build did; ``ok`` is False when any slide failed."""

    run_id: str
    work_dir: str
    outcomes: list[SlideOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Number of slides with this status."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[SlideOutcome]:
        """The failed slides."""
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when no slide failed."""
        return not self.failed

    def stage_seconds(self) -> dict[str, float]:
        """Wall seconds per stage summed over the slides processed in this run."""
        total: dict[str, float] = {}
        for o in self.outcomes:
            for stage, sec in o.stage_seconds.items():
                total[stage] = total.get(stage, 0.0) + sec
        return total


def model_hashes(cfg: BuildConfig) -> dict[str, str]:
    """Content hash of every model file the config uses (part of the run key)."""
    from immunodig.tissue import default_model_path

    files = {"tissue": Path(cfg.tissue_model or default_model_path())}
    if cfg.nuclei_backend is not None:
        from immunodig.nuclei import model_files

        files.update(model_files(cfg))
    if cfg.structure_model is not None:
        files["structures"] = Path(cfg.structure_model)
    missing = [f"{role}: {path}" for role, path in files.items() if not Path(path).is_file()]
    if missing:
        raise ModelFileError(f"model file(s) not found: {'; '.join(missing)}")
    from immunodig.tissue.checkpoint import model_content_sha256  # covers the model's side file

    hashes = {role: model_content_sha256(path) if role in ("tissue", "structures") else file_sha256(path)
              for role, path in files.items()}
    if cfg.embeddings:
        hashes["encoder"] = encoder_sha256(cfg)
    return hashes


def encoder_sha256(cfg: BuildConfig) -> str:
    """Content hash of the encoder of ``--embeddings`` (and its side file), after checking that
    it loads, so a bad encoder file stops the build before anything is recorded.

    Raises
    ------
    ModelFileError
        The file is missing, unreadable or does not fit its architecture.
    """
    from immunodig.embeddings import load_encoder

    return load_encoder(cfg.encoder, cfg.encoder_arch, device="cpu").file_sha256


def writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and check it can be written.

    Raises
    ------
    ConfigError
        One line naming the folder (a file in the way, no permission).
    """
    import os

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder {folder} ({exc.strerror}); nothing was "
                          "run") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"folder {folder} is not writable; nothing was run")


def check_tissue_model_fits(cfg: BuildConfig) -> None:
    """Refuse, before any slide is opened, a tile grid the tissue model was not made for.

    Raises
    ------
    ConfigError
        ``target_mpp x tile_size_px`` differs from the model's tile edge in µm.
    """
    from immunodig.tissue import load_tissue_classifier
    from immunodig.tissue.inference import TILE_SIZE_TOLERANCE

    clf = load_tissue_classifier(cfg.tissue_model)
    model_um = clf.tile_size_px * clf.input_mpp
    if abs(cfg.tile_size_um - model_um) > TILE_SIZE_TOLERANCE * model_um:
        raise ConfigError(
            f"tile grid {cfg.tile_size_px} px at {cfg.target_mpp} µm/px ({cfg.tile_size_um:.1f} µm) "
            f"does not fit the tissue model {Path(clf.path).name} ({clf.tile_size_px} px at "
            f"{clf.input_mpp} µm/px = {model_um:.1f} µm); use --tile-size {clf.tile_size_px} "
            f"--target-mpp {clf.input_mpp}; nothing was run")


def build_features(
    inputs: list[str | Path],
    store_path: str | Path,
    cfg: BuildConfig | None = None,
    *,
    manifest: str | Path | None = None,
    work_dir: str | Path | None = None,
    workers: int = 1,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    pseudonym_key: bytes | None = None,
    show_progress: bool = True,
    store_paths: str = "absolute",
) -> BuildSummary:
    """Process slides and load their features into the store.

    Parameters
    ----------
    inputs : list of path
        Slide files and/or folders (searched recursively).
    store_path : path
        DuckDB file; created and migrated when missing.
    cfg : BuildConfig, optional
        Build parameters (defaults: 0.5 µm/px, 224 px tiles, shipped tissue model).
    manifest : path, optional
        CSV ``file, patient_id, stain`` linking slides to patients, checked whole before any
        work (:data:`immunodig.pipeline.discovery.MATCHING_RULES`).
    work_dir : path, optional
        Where per-slide folders go (default: beside the store).
    workers : int
        Local worker processes (``executor="local"``).
    executor : str
        ``debug`` (in-process), ``local`` (process pool) or ``slurm`` (submitit job array).
    pseudonym_key : bytes, optional
        When given, the manifest's ``patient_id`` values are raw hospital identifiers and are
        replaced by their keyed pseudonyms (the same ones ``import-clinical`` makes).
    slurm : SlurmOptions, optional
        Array shape and resources for ``executor="slurm"`` (logs default to
        ``<work_dir>/slurm_logs``).
    store_paths : {"absolute", "relative", "none"}
        How slide file paths are kept in slide.json, failure.json and the store
        (:data:`immunodig.slide_folder.STORE_PATHS`; ``relative``: to the store's folder).

    Returns
    -------
    BuildSummary
    """
    from immunodig.compute import check_executor
    from immunodig.store.writer_lock import WriterLock

    check_executor(executor)
    sf.check_store_paths(store_paths)
    cfg = cfg or BuildConfig()
    qc_rules(cfg.qc_rules)  # unknown rule names are refused before anything is recorded
    store_path = Path(store_path)
    # Inputs are checked before anything is recorded, so bad input leaves the store untouched.
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise ConfigError(f"input not found: {', '.join(missing)}; nothing was run")
    links = read_slide_manifest(manifest, pseudonym_key) if manifest else None
    jobs = make_jobs(discover_slides(inputs), links, str(manifest))
    refuse_duplicate_content(jobs, cfg.mpp_override)
    work = Path(work_dir) if work_dir else sf.default_work_dir(store_path)
    hashes = model_hashes(cfg)
    check_tissue_model_fits(cfg)
    for folder in (store_path.parent, work):
        writable_folder(folder)
    run_id = run_key(cfg.config_hash(), hashes)
    # The writer lock is held for the whole build: a second build or an import is refused at
    # once, and a run still 'running' now was interrupted (its driver was killed).
    with WriterLock(store_path, "build-features"):
        return _run_build(jobs, store_path, cfg, work, hashes, run_id, workers, executor, slurm,
                          show_progress, store_paths)


def _run_build(jobs: list[SlideJob], store_path: Path, cfg: BuildConfig, work: Path,
               hashes: dict[str, str], run_id: str, workers: int, executor: str,
               slurm: SlurmOptions | None, show_progress: bool,
               store_paths: str = "absolute") -> BuildSummary:
    from immunodig.store import Store

    with Store.open(store_path) as store:
        store.mark_interrupted_runs()
        store.record_run(run_id=run_id, code_version=__version__, config=cfg.to_dict(),
                         config_hash=cfg.config_hash(), model_hashes=hashes)
    ctx = RunContext(cfg, str(work), run_id, hashes,
                     tile_loader_workers=0 if workers > 1 or executor == "debug" else 1,
                     store_paths=store_paths, store_dir=str(store_path.resolve().parent))
    summary = BuildSummary(run_id, str(work))
    try:
        with interrupt_on_signals():
            _run_jobs(jobs, ctx, executor, workers, slurm, summary, show_progress)
            ingest(store_path, summary.outcomes, run_id, store_paths=store_paths)
    except BuildInterrupted as exc:
        # Workers are stopped; what finished is stored, and the run says it was interrupted.
        ingest(store_path, summary.outcomes, run_id, interrupted=True, store_paths=store_paths)
        then = ("the Slurm array keeps running: `python cli.py ingest` loads its slides later"
                if executor == "slurm" else "rerun the same command to do the rest")
        raise BuildInterrupted(exc.signum, (
            f"{exc}: {len(summary.outcomes)} of {len(jobs)} slides processed and stored, run "
            f"{run_id} marked interrupted; {then}")) from None
    return summary


def _run_jobs(jobs: list[SlideJob], ctx: RunContext, executor: str, workers: int,
              slurm: SlurmOptions | None, summary: BuildSummary, show_progress: bool) -> None:
    """Run every job, H&E slides first, appending outcomes to ``summary`` as they finish."""
    he_jobs = [j for j in jobs if j.stain == "HE"]
    with progress(len(jobs), "slides", enabled=show_progress) as bar:

        def run(todo: list[SlideJob]) -> None:
            for outcome in _execute(todo, ctx, executor, workers, slurm) if todo else ():
                summary.outcomes.append(outcome)
                bar.advance(note=f"{outcome.slide_id or Path(outcome.path).name}: "
                                 f"{outcome.status}")

        # IHC slides are counted in the compartments of their patient's H&E tile map, so the
        # H&E slides go first and the IHC jobs are told which H&E folder to register onto.
        run(he_jobs)
        run(with_references([j for j in jobs if j.stain != "HE"], summary.outcomes, he_jobs))


def with_references(ihc_jobs: list[SlideJob], he_outcomes: list[SlideOutcome],
                    he_jobs: list[SlideJob]) -> list[SlideJob]:
    """Attach to each IHC job the result folder of its patient's first successful H&E slide
    (by file path); IHC slides of patients without one keep ``reference_folder=None``."""
    patient_of = {j.path: j.patient_id for j in he_jobs}
    reference: dict[str, str] = {}
    for o in sorted(he_outcomes, key=lambda o: o.path):
        patient = patient_of.get(o.path)
        if o.status in ("done", "skipped") and patient is not None and o.folder:
            reference.setdefault(patient, o.folder)
    return [replace(j, reference_folder=reference.get(j.patient_id)) if j.patient_id else j
            for j in ihc_jobs]


def _execute(jobs, ctx: RunContext, executor: str, workers: int,
             slurm: SlurmOptions | None = None):
    from immunodig.compute import SlurmOptions, run_inprocess, run_process_pool, run_slurm

    if executor == "debug":
        return run_inprocess(run_slide_job, jobs, ctx)
    if executor == "local":
        return run_process_pool(run_slide_job, jobs, ctx, workers, on_lost=lost_outcome)
    if executor == "slurm":
        options = slurm or SlurmOptions()
        if options.log_dir is None:
            options = replace(options, log_dir=str(Path(ctx.work_dir) / "slurm_logs"))
        return run_slurm(run_slide_job, jobs, ctx, options, on_lost=lost_outcome,
                         precheck=skip_if_complete)
    raise ValueError(f"unknown executor {executor!r}; use debug, local or slurm")


def lost_outcome(job: SlideJob, message: str) -> SlideOutcome:
    """Outcome of a slide whose worker process or Slurm task died before reporting."""
    return SlideOutcome(job.path, "failed", reason="failed", message=message)


def skip_if_complete(job: SlideJob, ctx: RunContext) -> SlideOutcome | None:
    """Resume on the submitting side: a slide with a valid result is not sent to Slurm.

    Opens the slide only to fingerprint it; any problem is left to the worker to report.
    """
    from immunodig.errors import ImmunodigError
    from immunodig.slides import Slide

    try:
        with Slide(job.path, mpp=ctx.cfg.mpp_override) as slide:
            folder = sf.slide_dir(ctx.work_dir, slide.fingerprint)
            if sf.is_complete(folder, ctx.run_id, result_key(job, ctx)):
                return SlideOutcome(job.path, "skipped", slide.fingerprint, str(folder))
    except ImmunodigError:
        pass
    return None


def ingest(store_path: str | Path, outcomes: list[SlideOutcome], run_id: str, *,
           interrupted: bool = False, store_paths: str = "absolute") -> None:
    """Single writer: load every finished slide folder, record every failure, close the run
    (``interrupted``: mark it so, with the number of slides it finished). Failure paths are kept
    as ``store_paths`` says; one with neither id nor path is keyed by a hash of its path."""
    import hashlib

    from immunodig.features.catalog import catalog
    from immunodig.store import SlideDirError, Store

    with Store.open(store_path) as store:
        store.sync_feature_catalog(catalog().values())
        for o in outcomes:
            if o.status in ("done", "skipped"):
                try:
                    store.ingest_slide_dir(o.folder)
                except SlideDirError as exc:  # folder damaged after the worker finished
                    store.record_failure(path=o.path, slide_id=o.slide_id, run_id=run_id,
                                         reason="corrupt", message=str(exc))
            else:
                path = sf.stored_slide_path(o.path, store_paths, Path(store_path).resolve().parent)
                key = "file_" + hashlib.sha256(str(Path(o.path).resolve()).encode()).hexdigest()[:16]
                store.record_failure(path=path, slide_id=o.slide_id, slide_key=key, run_id=run_id,
                                     reason=o.reason or "failed", message=o.message or "")
        if interrupted:
            store.mark_interrupted_runs()  # the writer lock is held: only this run is running
            return
        failed = sum(o.status == "failed" for o in outcomes)
        status = "done" if failed == 0 else ("failed" if failed == len(outcomes) else "partial")
        store.finish_run(run_id, status)
