"""``synth-cohort``: generate the synthetic demo cohort."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the synthetic-data commands to ``app``."""

    @app.command("synth-cohort")
    def synth_cohort(
        out: Annotated[Path, typer.Option(help="Output folder.")],
        patients: Annotated[int, typer.Option(min=1, help="Number of patients.")] = 8,
        seed: Annotated[int, typer.Option(help="Seed (same seed = same cohort).")] = 0,
        slide_mm: Annotated[float, typer.Option(min=0.25, help="Slide side, mm.")] = 4.0,
        mpp: Annotated[float, typer.Option(min=0.1, max=2.0, help="Microns per pixel.")] = 0.5,
        cd3_fraction: Annotated[float, typer.Option(
            min=0.0, max=1.0, help="Share of patients with a CD3 IHC slide.")] = 0.3,
        workers: Annotated[int, typer.Option(min=1, help="Parallel processes.")] = 1,
        design: Annotated[str, typer.Option(
            help="Slide layout: standard (1-3 H&E slides per patient, realistic variety) or demo "
                 "(one small H&E slide per patient with a tumour core and lymphoid aggregates; "
                 "docs/synthetic.md).")] = "standard",
    ) -> None:
        """Generate slides (pyramidal TIFF), slides.csv, clinical.csv and ground truth."""
        import time

        from immunodig.synthetic import make_cohort
        from immunodig.synthetic.design import DESIGNS

        if design not in DESIGNS:
            raise typer.BadParameter(f"unknown design {design!r}; use one of {', '.join(DESIGNS)}",
                                     param_hint="--design")
        t0 = time.perf_counter()
        n = 0

        def tick(name: str) -> None:
            nonlocal n
            n += 1
            typer.echo(f"  slide {n}: {name}")

        paths = make_cohort(out, patients, seed, slide_mm, mpp, cd3_fraction, workers, tick,
                            DESIGNS[design])
        typer.echo(f"{n} slides, {patients} patients in {time.perf_counter() - t0:.1f} s -> "
                   f"{paths.root}")
