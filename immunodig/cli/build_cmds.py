"""Commands that turn slides into stored features: build-features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the build commands to ``app``."""

    @app.command("build-features")
    def build_features_cmd(
        inputs: Annotated[list[Path], typer.Argument(help="Slide files and/or folders.")],
        store: Annotated[Path, typer.Option(help="DuckDB store (created if missing).")],
        manifest: Annotated[Optional[Path], typer.Option(
            help="CSV with columns file, patient_id[, stain] linking slides to patients.")] = None,
        mpp: Annotated[Optional[float], typer.Option(
            help="Microns per pixel for slides whose metadata has none.")] = None,
        workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
        executor: Annotated[str, typer.Option(help="debug | local | slurm")] = "local",
        work_dir: Annotated[Optional[Path], typer.Option(
            help="Per-slide result folders (default: <store>_slides beside the store).")] = None,
        tissue_model: Annotated[Optional[Path], typer.Option(
            help="Tissue classifier checkpoint (default: the shipped model).")] = None,
        nuclei_backend: Annotated[Optional[str], typer.Option(
            help="classical | cellpose | torchscript; omit to skip the nuclei stage.")] = None,
        nuclei_model: Annotated[Optional[Path], typer.Option(
            help="Model file for the nuclei backend.")] = None,
        target_mpp: Annotated[float, typer.Option(help="Tile resolution, µm/px.")] = 0.5,
        tile_size: Annotated[int, typer.Option(help="Tile edge, pixels.")] = 224,
        margin_um: Annotated[float, typer.Option(help="Invasive margin half-width, µm.")] = 500.0,
        config: Annotated[Optional[Path], typer.Option(
            help="JSON BuildConfig; command-line options are ignored when given.")] = None,
        quiet: Annotated[bool, typer.Option(help="No progress output.")] = False,
    ) -> None:
        """Compute slide features and load them into the store (resumable, idempotent)."""
        from immunodig.config import BuildConfig
        from immunodig.features.build import build_features
        from immunodig.cli.summary import print_build_summary

        if config is not None:
            cfg = BuildConfig.from_json(config)
        else:
            cfg = BuildConfig(
                target_mpp=target_mpp, tile_size_px=tile_size, margin_um=margin_um,
                tissue_model=str(tissue_model) if tissue_model else None,
                nuclei_backend=nuclei_backend,
                nuclei_model=str(nuclei_model) if nuclei_model else None,
                mpp_override=mpp,
            )
        if mpp is not None:
            cfg = cfg.with_(mpp_override=mpp)
        summary = build_features(list(inputs), store, cfg, manifest=manifest, work_dir=work_dir,
                                 workers=workers, executor=executor, show_progress=not quiet)
        print_build_summary(summary)
        if not summary.ok:
            raise typer.Exit(code=1)
