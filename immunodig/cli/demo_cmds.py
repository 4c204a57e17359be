"""``demo``: the whole pipeline on a generated cohort."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from immunodig.demo import DEMO_PATIENTS, DEMO_SLIDE_MM


def register(app: typer.Typer) -> None:
    """Add the demo command to ``app``."""

    @app.command("demo")
    def demo_cmd(
        out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo"),
        patients: Annotated[int, typer.Option(
            min=20, help="Patients in the generated cohort (>= 20: 5-fold CV needs events in every fold)."),
        ] = DEMO_PATIENTS,
        seed: Annotated[int, typer.Option(help="Cohort seed.")] = 7,
        slide_mm: Annotated[float, typer.Option(help="Slide edge in mm.")] = DEMO_SLIDE_MM,
        workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
        mil: Annotated[bool, typer.Option(help="Tile embeddings and the attention-MIL model.")] = True,
    ) -> None:
        """Generate a demo cohort, build features, import clinical data, evaluate models, report."""
        from immunodig.demo import EXAMPLE_QUERY, format_metrics, run_demo
        from immunodig.store import query

        result = run_demo(out, n_patients=patients, seed=seed, slide_mm=slide_mm, workers=workers,
                          mil=mil)
        typer.echo(format_metrics(result.metrics))
        steps = result.step_seconds
        typer.echo(f"\nwall time {sum(steps.values()) / 60:.1f} min: "
                   + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items()))
        typer.echo(f"\nstore:  {result.store}\nreport: {result.report}\n")
        typer.echo("example query (python cli.py query \"...\" --store "
                   f"{result.store}):\n{EXAMPLE_QUERY}\n")
        typer.echo(query(result.store, EXAMPLE_QUERY))
