"""``synth-cohort``: generate the synthetic demo cohort."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the synthetic-data commands to ``app``."""

    @app.command("synth-cohort")
    def synth_cohort(
        out: Path = typer.Option(..., "--out", help="Output folder."),
        patients: int = typer.Option(8, "--patients", min=1, help="Number of patients."),
        seed: int = typer.Option(0, "--seed", help="Seed (same seed = same cohort)."),
        slide_mm: float = typer.Option(4.0, "--slide-mm", min=0.25, help="Slide side, mm."),
        mpp: float = typer.Option(0.5, "--mpp", min=0.05, help="Microns per pixel."),
        cd3_fraction: float = typer.Option(0.3, "--cd3-fraction", min=0.0, max=1.0,
                                           help="Share of patients with a CD3 IHC slide."),
        workers: int = typer.Option(1, "--workers", min=1, help="Parallel processes."),
    ) -> None:
        """Generate slides (pyramidal TIFF), slides.csv, clinical.csv and ground truth."""
        import time

        from immunodig.synthetic import make_cohort

        t0 = time.perf_counter()
        n = 0

        def tick(name: str) -> None:
            nonlocal n
            n += 1
            typer.echo(f"  slide {n}: {name}")

        paths = make_cohort(out, patients, seed, slide_mm, mpp, cd3_fraction, workers, tick)
        typer.echo(f"{n} slides, {patients} patients in {time.perf_counter() - t0:.1f} s -> "
                   f"{paths.root}")
