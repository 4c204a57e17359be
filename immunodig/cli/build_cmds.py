"""Commands that turn slides into stored features: build-features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from immunodig.pipeline.discovery import MATCHING_RULES


def register(app: typer.Typer) -> None:
    """Add the build commands to ``app``."""

    @app.command("build-features")
    def build_features_cmd(
        inputs: Annotated[list[Path], typer.Argument(help="Slide files and/or folders.")],
        store: Annotated[Path, typer.Option(help="DuckDB store (created if missing).")],
        manifest: Annotated[Optional[Path], typer.Option(
            help="CSV with columns file, patient_id[, stain] linking slides to patients. "
                 + MATCHING_RULES)] = None,
        key_file: Annotated[Optional[Path], typer.Option(
            help="Pseudonymisation key: the manifest's patient_id values are raw hospital IDs, "
                 "replaced by the same keyed pseudonyms import-clinical makes; without it the "
                 "IDs must already be pseudonyms.")] = None,
        store_paths: Annotated[str, typer.Option(
            help="How slide file paths (their names often carry identifiers) are kept in the "
                 "store, slide.json and failure.json: absolute | relative (to the store's "
                 "folder) | none (images in show/report then say 'slide file not available').")
        ] = "absolute",
        mpp: Annotated[Optional[float], typer.Option(
            help="Microns per pixel for slides whose metadata has none.")] = None,
        workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
        executor: Annotated[str, typer.Option(help="debug | local | slurm")] = "local",
        work_dir: Annotated[Optional[Path], typer.Option(
            help="Per-slide result folders (default: <store>_slides beside the store).")] = None,
        tissue_model: Annotated[Optional[Path], typer.Option(
            help="Tissue classifier checkpoint (default: the shipped model).")] = None,
        nuclei_backend: Annotated[str, typer.Option(
            help="classical | cellpose | torchscript | segmenter (a train-segmenter / lab semantic "
                 "model, --nuclei-model) | none (none skips the nuclei stage: no TIL features).")] = "classical",
        nuclei_model: Annotated[Optional[Path], typer.Option(
            help="Model file for the nuclei backend.")] = None,
        cell_classifier: Annotated[Optional[str], typer.Option(
            help="Cell classifier: default (the shipped model) | rule | PATH of a model file "
                 "(train-cell-classifier).")] = None,
        embeddings: Annotated[bool, typer.Option(
            help="Also embed every H&E tissue tile (embeddings.npy per slide; docs/embeddings.md).")] = False,
        encoder: Annotated[Optional[Path], typer.Option(
            help="Encoder file for --embeddings (default: the shipped encoder).")] = None,
        encoder_arch: Annotated[Optional[str], typer.Option(
            help="timm / torchvision architecture of --encoder (else from its side file).")] = None,
        structure_model: Annotated[Optional[Path], typer.Option(
            help="Structure segmenter (train-segmenter, or the lab's TorchScript / state dict + side "
                 "file): writes structures.parquet and the seg_* features.")] = None,
        target_mpp: Annotated[float, typer.Option(help="Tile resolution, µm/px.")] = 0.5,
        tile_size: Annotated[int, typer.Option(help="Tile edge, pixels.")] = 224,
        margin_um: Annotated[float, typer.Option(help="Invasive margin half-width, µm.")] = 500.0,
        config: Annotated[Optional[Path], typer.Option(
            help="JSON BuildConfig; command-line options are ignored when given.")] = None,
        quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
        slides_per_task: Annotated[int, typer.Option(
            help="Slurm: slides processed one after another by each array task.")] = 4,
        array_parallelism: Annotated[int, typer.Option(
            help="Slurm: most array tasks running at once.")] = 64,
        partition: Annotated[Optional[str], typer.Option(help="Slurm partition.")] = None,
        account: Annotated[Optional[str], typer.Option(help="Slurm account.")] = None,
        qos: Annotated[Optional[str], typer.Option(help="Slurm quality of service.")] = None,
        gpus: Annotated[int, typer.Option(help="Slurm: GPUs per array task.")] = 0,
        cpus: Annotated[int, typer.Option(help="Slurm: CPU cores per array task.")] = 4,
        mem_gb: Annotated[int, typer.Option(help="Slurm: memory per array task, GB.")] = 16,
        time_min: Annotated[int, typer.Option(
            help="Slurm: wall-time limit per array task, minutes.")] = 120,
        log_dir: Annotated[Optional[Path], typer.Option(
            help="Slurm: submitit logs on the shared file system "
                 "(default: <work-dir>/slurm_logs).")] = None,
    ) -> None:
        """Compute slide features and load them into the store (resumable, idempotent)."""
        from immunodig.cli.summary import print_build_summary
        from immunodig.compute import SlurmOptions
        from immunodig.config import BuildConfig
        from immunodig.pipeline.build import build_features

        if config is not None:
            cfg = BuildConfig.from_json(config)
        else:
            cfg = BuildConfig(
                target_mpp=target_mpp, tile_size_px=tile_size, margin_um=margin_um,
                tissue_model=str(tissue_model) if tissue_model else None,
                nuclei_backend=None if nuclei_backend == "none" else nuclei_backend,
                nuclei_model=str(nuclei_model) if nuclei_model else None,
                cell_classifier=None if cell_classifier in (None, "default") else cell_classifier,
                mpp_override=mpp,
                embeddings=embeddings, encoder=str(encoder) if encoder else None, encoder_arch=encoder_arch,
                structure_model=str(structure_model) if structure_model else None,
            )
        if mpp is not None:
            cfg = cfg.with_(mpp_override=mpp)
        slurm = SlurmOptions(
            slides_per_task=slides_per_task, array_parallelism=array_parallelism,
            partition=partition, account=account, qos=qos, gpus_per_task=gpus,
            cpus_per_task=cpus, mem_gb=mem_gb, time_min=time_min,
            log_dir=str(log_dir) if log_dir else None)
        key = None
        if key_file is not None:
            from immunodig.clinical.pseudonym import load_key

            key = load_key(key_file)
        summary = build_features(list(inputs), store, cfg, manifest=manifest, work_dir=work_dir,
                                 pseudonym_key=key, store_paths=store_paths,
                                 workers=workers, executor=executor, slurm=slurm,
                                 show_progress=not quiet)
        print_build_summary(summary)
        if not summary.ok:
            raise typer.Exit(code=1)

    @app.command("ingest")
    def ingest_cmd(
        store: Annotated[Path, typer.Option(help="DuckDB store.")],
        work_dir: Annotated[Optional[Path], typer.Option(
            help="Per-slide result folders (default: <store>_slides).")] = None,
    ) -> None:
        """Load finished per-slide results (e.g. from a Slurm array) into the store."""
        from immunodig.pipeline.status import ingest_work_dir
        from immunodig.slide_folder import default_work_dir

        counts = ingest_work_dir(store, work_dir or default_work_dir(store))
        typer.echo(f"ingested {counts['complete']} complete and {counts['failed']} failed slide "
                   f"folders; {counts['damaged']} damaged (recorded as corrupt; rerun "
                   f"build-features); {counts['in_progress']} still in progress")

    @app.command("status")
    def status_cmd(
        store: Annotated[Path, typer.Option(help="DuckDB store.")],
        work_dir: Annotated[Optional[Path], typer.Option(
            help="Per-slide result folders (default: <store>_slides).")] = None,
        failed: Annotated[bool, typer.Option(
            "--failed", help="Only the failed slides, with the error message.")] = False,
    ) -> None:
        """List done, failed (with reason) and pending slides: full slide ids and file names."""
        import polars as pl
        from rich.console import Console
        from rich.table import Table

        from immunodig.pipeline.status import slide_status
        from immunodig.slide_folder import default_work_dir

        df = slide_status(store, work_dir or default_work_dir(store))
        summary = df
        if failed:
            df = df.filter(pl.col("status") == "failed")
        df = df.with_columns(pl.col("path").map_elements(lambda p: Path(p).name, return_dtype=pl.Utf8)
                             .alias("file"))
        columns = ("slide_id", "file", "status", "reason") + (
            ("message", "run_id") if failed else ("flags", "run_id", "updated_at"))
        rows = []
        for row in df.iter_rows(named=True):
            cells = {c: "" if row[c] is None else str(row[c]) for c in columns}
            if row.get("updated_at") is not None:
                cells["updated_at"] = row["updated_at"].strftime("%Y-%m-%d %H:%M")
            rows.append([cells[c] for c in columns])
        table = Table(title=f"{'failed ' if failed else ''}slides in {store.name}")
        for i, col in enumerate(columns):
            if col in ("slide_id", "run_id", "updated_at"):  # never cut: ids are copied into commands
                table.add_column(col, no_wrap=True, min_width=max([len(col)] + [len(r[i]) for r in rows]))
            else:
                table.add_column(col, overflow="fold")
        for cells in rows:
            table.add_row(*cells)
        console = Console()
        if not console.is_terminal:  # piped or redirected: one line per slide
            console = Console(width=max(console.width, 200))
        console.print(table)
        counts = summary.group_by("status").len().sort("status")
        flagged = int((summary["flags"].fill_null("") != "").sum())
        typer.echo(", ".join(f"{s}: {n}" for s, n in counts.iter_rows())
                   + f"; flagged by QC: {flagged}")
