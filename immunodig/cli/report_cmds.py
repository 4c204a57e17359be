"""Commands ``report``, ``show`` and ``export-geojson`` (thin wrappers over immunodig.report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

STORE_HELP = "DuckDB store (.duckdb)"
WORK_HELP = "per-slide folders (default: <store stem>_slides beside the store)"
SLIDE_HELP = "slide id, unique id prefix, or slide file name (omit with --all)"

StoreOpt = Annotated[Path, typer.Option("--store", help=STORE_HELP)]
WorkOpt = Annotated[Optional[Path], typer.Option("--work-dir", help=WORK_HELP)]
SlideArg = Annotated[Optional[str], typer.Argument(help=SLIDE_HELP)]
AllOpt = Annotated[bool, typer.Option("--all", help="every slide of the store")]


def register(app: typer.Typer) -> None:
    """Add the report commands to ``app``."""

    @app.command("report")
    def report(
        store: StoreOpt,
        out: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("report.html"),
        work_dir: WorkOpt = None,
        max_slides: Annotated[int, typer.Option("--max-slides", help="slides in the gallery")] = 24,
    ) -> None:
        """Write one self-contained HTML report (figures inlined; opens offline)."""
        from immunodig.report import build_report

        info = build_report(store, out, work_dir=work_dir, max_gallery=max_slides)
        typer.echo(f"report written to {info.path} ({info.size_bytes / 1e6:.1f} MB, "
                   f"{info.seconds:.1f} s)")
        for section, why in info.unavailable.items():
            typer.echo(f"  {section}: not available: {why}")

    @app.command("show")
    def show(
        slide: SlideArg = None,
        store: StoreOpt = ...,
        out_dir: Annotated[Optional[Path], typer.Option(
            "--out-dir", help="where to write the PNGs (default: the slide's folder; with "
                              "--all, one sub-folder per slide)")] = None,
        work_dir: WorkOpt = None,
        every: AllOpt = False,
        attention: Annotated[Optional[str], typer.Option(
            "--attention", help="also draw a MIL run's per-tile attention (attention.png): a "
                                "model_run_id, or 'latest'")] = None,
    ) -> None:
        """Write a slide's overlay PNGs (H&E: tissue classes, TIL density, compartments, tissue
        mask, QC exclusions; IHC: positive-cell density, registration, mask, QC; with
        --attention, the MIL attention map)."""
        from immunodig.report.overlays import write_attention_overlay, write_slide_overlays
        from immunodig.report.slide_artefacts import locate_slide_folder, resolve_slides

        run_id = None
        if attention is not None:
            from immunodig.report.attention import latest_attention_run

            run_id = latest_attention_run(store) if attention == "latest" else attention
        for slide_id in resolve_slides(store, slide, every):
            dest = out_dir / slide_id if (out_dir and every) else out_dir
            folder = locate_slide_folder(store, slide_id, work_dir)
            written = write_slide_overlays(folder, dest, store_dir=store.resolve().parent)
            if run_id is not None:
                written["attention"] = write_attention_overlay(store, folder, run_id, dest)
            for kind, result in written.items():
                typer.echo(f"{slide_id} {kind}: {result}")

    @app.command("export-geojson")
    def export_geojson(
        slide: SlideArg = None,
        store: StoreOpt = ...,
        out: Annotated[Path, typer.Option(
            "--out", help="GeoJSON file to write (with --all: a folder, one "
                          "<slide_id>.geojson each)")] = ...,
        work_dir: WorkOpt = None,
        every: AllOpt = False,
        tiles: Annotated[bool, typer.Option("--tiles/--no-tiles", help="include tiles")] = True,
        annotations: Annotated[bool, typer.Option(
            "--annotations/--no-annotations",
            help="include the compartments (tumour region, margin, core, tissue)")] = True,
        nuclei: Annotated[bool, typer.Option(
            "--nuclei/--no-nuclei", help="include nuclei (IHC: positive cells)")] = True,
        points: Annotated[bool, typer.Option("--points", help="cells as points, not octagons")] = False,
        structures: Annotated[bool, typer.Option(
            "--structures/--no-structures",
            help="include segmented structures (build-features --structure-model) and the tissue as "
                 "'Region*'; export with --no-tiles --no-annotations --no-nuclei to retrain on it")] = True,
        attention: Annotated[Optional[str], typer.Option(
            "--attention", help="add a MIL run's attention to each tile's measurements: a "
                                "model_run_id, or 'latest'")] = None,
    ) -> None:
        """Export tiles, compartments and cells as QuPath-importable GeoJSON (level-0 pixels)."""
        from immunodig.report.geojson import export_slide_geojson
        from immunodig.report.slide_artefacts import locate_slide_folder, resolve_slides

        run_id = None
        if attention is not None:
            from immunodig.report.attention import attention_measurements, latest_attention_run, slide_attention

            run_id = latest_attention_run(store) if attention == "latest" else attention
        for slide_id in resolve_slides(store, slide, every):
            extra = None
            if run_id is not None:
                from immunodig.errors import SlideArtefactError

                try:
                    extra = attention_measurements(slide_attention(store, slide_id, run_id))
                except SlideArtefactError as exc:
                    typer.echo(f"{slide_id}: attention not available: {exc}")
            dest = out / f"{slide_id}.geojson" if every else out
            dest.parent.mkdir(parents=True, exist_ok=True)
            counts = export_slide_geojson(locate_slide_folder(store, slide_id, work_dir), dest,
                                          tiles=tiles, nuclei=nuclei, annotations=annotations,
                                          nucleus_shape="point" if points else "polygon",
                                          structures=structures, tile_measurements=extra)
            typer.echo(f"{slide_id}: {counts['tiles']} tiles, {counts['annotations']} "
                       f"annotations and {counts['detections']} detections written to {dest}")
