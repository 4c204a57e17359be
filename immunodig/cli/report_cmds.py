"""Commands ``report``, ``show`` and ``export-geojson`` (thin wrappers over immunodig.report)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

STORE_HELP = "DuckDB store (.duckdb)"
WORK_HELP = "per-slide folders (default: <store stem>_slides beside the store)"


def register(app: typer.Typer) -> None:
    """Add the report commands to ``app``."""

    @app.command("report")
    def report(
        store: Path = typer.Option(..., "--store", help=STORE_HELP),
        out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write"),
        work_dir: Optional[Path] = typer.Option(None, "--work-dir", help=WORK_HELP),
        max_slides: int = typer.Option(24, "--max-slides", help="slides in the gallery"),
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
        slide_id: str = typer.Argument(..., help="slide id (s_...)"),
        store: Path = typer.Option(..., "--store", help=STORE_HELP),
        out_dir: Optional[Path] = typer.Option(
            None, "--out-dir", help="where to write the PNGs (default: the slide's folder)"),
        work_dir: Optional[Path] = typer.Option(None, "--work-dir", help=WORK_HELP),
    ) -> None:
        """Write a slide's overlay PNGs: tissue classes, TIL density, tissue mask, QC exclusions."""
        from immunodig.report.overlays import write_slide_overlays
        from immunodig.report.slide_artefacts import locate_slide_folder

        written = write_slide_overlays(locate_slide_folder(store, slide_id, work_dir), out_dir)
        for kind, result in written.items():
            typer.echo(f"{kind}: {result}")

    @app.command("export-geojson")
    def export_geojson(
        slide_id: str = typer.Argument(..., help="slide id (s_...)"),
        store: Path = typer.Option(..., "--store", help=STORE_HELP),
        out: Path = typer.Option(..., "--out", help="GeoJSON file to write"),
        work_dir: Optional[Path] = typer.Option(None, "--work-dir", help=WORK_HELP),
        tiles: bool = typer.Option(True, "--tiles/--no-tiles", help="include tiles"),
        nuclei: bool = typer.Option(True, "--nuclei/--no-nuclei", help="include nuclei"),
        points: bool = typer.Option(False, "--points", help="nuclei as points, not octagons"),
    ) -> None:
        """Export tiles and nuclei as QuPath-importable GeoJSON (level-0 pixel coordinates)."""
        from immunodig.report.geojson import export_slide_geojson
        from immunodig.report.slide_artefacts import locate_slide_folder

        counts = export_slide_geojson(locate_slide_folder(store, slide_id, work_dir), out, tiles=tiles,
                                      nuclei=nuclei, nucleus_shape="point" if points else "polygon")
        typer.echo(f"{counts['tiles']} tiles and {counts['detections']} detections written to {out}")
