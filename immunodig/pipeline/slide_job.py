"""One slide, end to end: the unit of work every executor runs.

``run_slide_job`` reads one slide file and writes only that slide's artefact folder (see
docs/architecture.md); it never touches the store, so it can run in a thread, a local process
pool or a Slurm array task. Every file is written atomically and ``manifest.json`` last.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from immunodig import __version__
from immunodig import slide_folder as sf
from immunodig.config import BuildConfig
from immunodig.errors import ImmunodigError, SlideError
from immunodig.io import write_json_atomic, write_parquet_atomic
from immunodig.provenance import file_sha256


@dataclass(frozen=True)
class SlideJob:
    """What to process: a slide file and what the manifest says about it."""

    path: str
    patient_id: str | None = None
    stain: str = "HE"
    #: For IHC slides: result folder of the patient's H&E slide to register onto.
    reference_folder: str | None = None


@dataclass(frozen=True)
class SlideOutcome:
    """Result of one job (picklable, returned to the driver).

    ``status`` is ``done``, ``skipped`` (valid result already present) or ``failed``.
    """

    path: str
    status: str
    slide_id: str | None = None
    folder: str | None = None
    reason: str | None = None
    message: str | None = None
    seconds: float = 0.0
    #: Plausibility flags of a finished slide (``qc.json``; :mod:`immunodig.pipeline.slide_qc`).
    flags: tuple[str, ...] = ()
    #: Wall seconds per stage of a finished slide (``stage_seconds`` of ``manifest.json``).
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class RunContext:
    """Everything a worker needs besides the job (picklable)."""

    cfg: BuildConfig
    work_dir: str
    run_id: str
    model_hashes: dict[str, str]
    tile_loader_workers: int = 0
    #: ``--store-paths`` (:data:`immunodig.slide_folder.STORE_PATHS`) and the store's folder,
    #: which ``relative`` paths are relative to.
    store_paths: str = "absolute"
    store_dir: str = ""

    def stored_path(self, path: str | Path) -> str | None:
        """The form of a slide file's path this run writes (slide.json, failure.json)."""
        return sf.stored_slide_path(path, self.store_paths, self.store_dir)


def result_key(job: SlideJob, ctx: RunContext) -> str:
    """Key of one slide's result: the run key plus every per-slide input that changes results
    (stain, patient link, ``--mpp``, the H&E folder an IHC slide registers onto).

    A folder is reused only when its manifest carries the same key, so correcting ``--mpp`` or
    a manifest row recomputes the slide instead of keeping a stale result.
    """
    import hashlib
    import json

    ref = Path(job.reference_folder).name if job.reference_folder else None
    data = {"run_id": ctx.run_id, "stain": job.stain, "patient_id": job.patient_id,
            "mpp_override": ctx.cfg.mpp_override, "reference_slide": ref}
    if ctx.store_paths != "absolute":  # slide.json differs; absolute keeps earlier keys valid
        data["store_paths"] = ctx.store_paths
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_slide_job(job: SlideJob, ctx: RunContext) -> SlideOutcome:
    """Process one slide; failures are caught, recorded in ``failure.json`` and returned."""
    t0 = time.monotonic()
    slide_id: str | None = None
    folder: Path | None = None
    try:
        from immunodig.slides import Slide

        with Slide(job.path, mpp=ctx.cfg.mpp_override) as slide:
            slide_id = slide.fingerprint
            folder = sf.slide_dir(ctx.work_dir, slide_id)
            if sf.is_complete(folder, ctx.run_id, result_key(job, ctx)):
                return SlideOutcome(job.path, "skipped", slide_id, str(folder),
                                    seconds=time.monotonic() - t0)
            # Built aside and swapped in whole: a run that fails never destroys an earlier valid
            # result, and a killed worker's leftovers are cleared by the redo.
            staging = sf.staging_dir(ctx.work_dir, slide_id)
            sf.discard(staging)
            flags, stage_seconds = _process(slide, job, ctx, staging)
            sf.publish(staging, folder)
        return SlideOutcome(job.path, "done", slide_id, str(folder), seconds=time.monotonic() - t0,
                            flags=flags, stage_seconds=stage_seconds)
    except SlideError as exc:
        return _fail(job, ctx, slide_id, folder, exc.reason, str(exc), t0)
    except ImmunodigError as exc:
        return _fail(job, ctx, slide_id, folder, "failed", str(exc), t0)
    except Exception as exc:  # keep going past one bad slide, but keep the evidence
        msg = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
        return _fail(job, ctx, slide_id, folder, "failed", msg, t0)


def _fail(job: SlideJob, ctx: RunContext, slide_id: str | None, folder: Path | None,
          reason: str, message: str, t0: float) -> SlideOutcome:
    """Record a failure; a folder holding an earlier run's valid result is left as it is."""
    if ctx.store_paths != "absolute":  # the message names the file too
        message = sf.redact_slide_path(message, job.path, ctx.stored_path(job.path))
    if folder is not None:
        sf.discard(sf.staging_dir(ctx.work_dir, slide_id))
        if not sf.holds_valid_result(folder):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / sf.MANIFEST_JSON).unlink(missing_ok=True)
            write_json_atomic(folder / sf.FAILURE_JSON, {
                "path": ctx.stored_path(job.path), "slide_id": slide_id, "reason": reason,
                "message": message, "run_id": ctx.run_id, "failed_at": _now(),
            })
    return SlideOutcome(job.path, "failed", slide_id, str(folder) if folder else None,
                        reason, message, time.monotonic() - t0)


def _process(slide, job: SlideJob, ctx: RunContext,
             folder: Path) -> tuple[tuple[str, ...], dict[str, float]]:
    """Write every artefact of one slide into ``folder`` (its staging folder), the manifest
    last; return its plausibility flags and wall seconds per stage."""
    from immunodig.features.classmap import save_class_map
    from immunodig.features.slide_features import compute_slide_features
    from immunodig.pipeline import slide_qc
    from immunodig.slides import tile_grid
    from immunodig.slides.tissue_mask import TissueMask, detect_tissue

    cfg = ctx.cfg
    started = _now()
    clock = _StageClock()
    folder.mkdir(parents=True, exist_ok=True)

    record = slide.describe()
    record.update(path=ctx.stored_path(slide.path), patient_id=job.patient_id, stain=job.stain,
                  checksum_sha256=file_sha256(slide.path))
    write_json_atomic(folder / sf.SLIDE_JSON, record)

    rules = slide_qc.qc_rules(cfg.qc_rules)
    thumb = slide.thumbnail(cfg.mask_mpp)
    mask = TissueMask(detect_tissue(thumb, cfg.mask_mpp), cfg.mask_mpp)
    mask.save_png(folder / sf.MASK_PNG)
    if mask.area_mm2 == 0:
        raise SlideError(f"slide {slide.fingerprint}: no tissue detected", reason="no_tissue")
    grid = tile_grid(mask, slide.mpp, slide.dimensions, cfg.target_mpp, cfg.tile_size_px,
                     cfg.min_tissue_fraction)
    if grid.height == 0:
        raise SlideError(f"slide {slide.fingerprint}: tissue smaller than one tile",
                         reason="no_tissue")

    clock.lap("mask")
    tiles = _classify(slide, grid, job.stain, ctx)
    clock.lap("tissue")
    write_parquet_atomic(folder / sf.TILES_PARQUET, tiles)
    n_cols = int(slide.size_um[0] // cfg.tile_size_um)
    n_rows = int(slide.size_um[1] // cfg.tile_size_um)
    save_class_map(tiles, n_cols, n_rows, folder / sf.CLASSMAP_PNG)

    measures: dict[str, float] = {
        "mpp": slide.mpp, "mpp_from_override": float(slide.mpp_source == "override"),
        "tissue_area_mm2": mask.area_mm2,
        **slide_qc.tile_measures(tiles, (cfg.tile_size_um / 1000.0) ** 2, job.stain),
    }
    files = [sf.SLIDE_JSON, sf.MASK_PNG, sf.TILES_PARQUET, sf.CLASSMAP_PNG, sf.FEATURES_PARQUET,
             sf.QC_JSON]
    if job.stain == "HE":
        nuclei = _nuclei(slide, tiles, ctx, folder)
        clock.lap("nuclei")
        structures = _structures(slide, mask, cfg, folder)
        if structures is not None:
            files.append(sf.STRUCTURES_PARQUET)
            clock.lap("structures")
        features = compute_slide_features(tiles, nuclei, mask.area_mm2, cfg, structures)
        if nuclei is not None:
            files.append(sf.NUCLEI_PARQUET)
            measures.update(slide_qc.nuclei_measures(nuclei, measures["classified_tissue_mm2"]))
        measures.update(slide_qc.stain_measures(thumb, mask.mask))
        clock.lap("features")
        if cfg.embeddings:
            files += _embeddings(slide, tiles, ctx, folder)
            clock.lap("embeddings")
    else:
        from immunodig.pipeline.ihc_slide import ihc_slide_features

        features, extra, ihc_measures = ihc_slide_features(
            slide, tiles, mask, job.stain, job.reference_folder, cfg, folder)
        files += extra
        measures.update(ihc_measures)
        clock.lap("ihc")
    qc = slide_qc.qc_record(measures, job.stain, rules)
    write_json_atomic(folder / sf.QC_JSON, qc)
    write_parquet_atomic(folder / sf.FEATURES_PARQUET, features)
    write_json_atomic(folder / sf.MANIFEST_JSON, {
        "slide_id": slide.fingerprint,
        "run_id": ctx.run_id,
        "result_key": result_key(job, ctx),
        "code_version": __version__,
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash(),
        "model_hashes": ctx.model_hashes,
        "started_at": started,
        "finished_at": _now(),
        "stage_seconds": clock.seconds,
        "files": sf.hash_files(folder, files),
    })
    return tuple(qc["flags"]), clock.seconds


class _StageClock:
    """Wall seconds of a slide's stages (``stage_seconds`` of manifest.json)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, stage: str) -> None:
        """Charge the time since the previous lap to ``stage``."""
        now = time.monotonic()
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + now - self._last, 3)
        self._last = now


def _classify(slide, grid: pl.DataFrame, stain: str, ctx: RunContext) -> pl.DataFrame:
    """Tile QC and tissue classes (H&E); IHC slides get QC only."""
    if stain != "HE":
        from immunodig.slides.quality import assess_tiles

        return assess_tiles(slide, grid, ctx.cfg.target_mpp, ctx.cfg.tile_size_px)
    from immunodig.tissue.inference import classify_tiles

    return classify_tiles(str(slide.path), grid, ctx.cfg.tissue_model, mpp=ctx.cfg.mpp_override,
                          num_workers=ctx.tile_loader_workers)


def _embeddings(slide, tiles: pl.DataFrame, ctx: RunContext, folder: Path) -> list[str]:
    """Tile embeddings (``--embeddings``) with the run's encoder; returns the files written."""
    from immunodig.embeddings import embed_slide
    from immunodig.embeddings.encoder import cached_encoder

    encoder = cached_encoder(ctx.cfg.encoder, ctx.cfg.encoder_arch, ctx.model_hashes["encoder"])
    embed_slide(slide.path, tiles, encoder, folder, mpp=ctx.cfg.mpp_override, num_workers=ctx.tile_loader_workers)
    return [sf.EMBEDDINGS_NPY, sf.EMBEDDING_TILES_PARQUET]


def _nuclei(slide, tiles: pl.DataFrame, ctx: RunContext, folder: Path) -> pl.DataFrame | None:
    """Nucleus segmentation and classification, streamed to ``nuclei.parquet``."""
    cfg = ctx.cfg
    if cfg.nuclei_backend is None:
        return None
    from immunodig.nuclei import segment_slide

    segment_slide(slide, tiles, cfg, folder / sf.NUCLEI_PARQUET)
    from immunodig.features.tilemap import NUCLEI_COLUMNS

    # Only the columns the slide features use: a slide may hold millions of nuclei.
    return pl.read_parquet(folder / sf.NUCLEI_PARQUET, columns=list(NUCLEI_COLUMNS))


def _structures(slide, mask, cfg: BuildConfig, folder: Path) -> pl.DataFrame | None:
    """Structure segmentation over the tissue, written to ``structures.parquet``."""
    if cfg.structure_model is None:
        return None
    from immunodig.structures.inference import StructureSegmenter
    from immunodig.structures.slide_inference import segment_slide_structures

    table = segment_slide_structures(slide, StructureSegmenter(cfg.structure_model), mask)
    write_parquet_atomic(folder / sf.STRUCTURES_PARQUET, table)
    return table
