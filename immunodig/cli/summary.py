"""Final summary tables printed by long commands."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def print_build_summary(summary) -> None:
    """Counts per status and one row per failed slide with its reason."""
    console = Console(stderr=False)
    table = Table(title=f"build-features run {summary.run_id}")
    for col in ("done", "skipped (already valid)", "failed"):
        table.add_column(col, justify="right")
    table.add_row(str(summary.count("done")), str(summary.count("skipped")),
                  str(summary.count("failed")))
    console.print(table)
    if summary.failed:
        fails = Table(title="failed slides")
        fails.add_column("file")
        fails.add_column("reason")
        fails.add_column("message", overflow="fold")
        for o in summary.failed:
            fails.add_row(Path(o.path).name, o.reason or "failed",
                          (o.message or "").splitlines()[0][:200])
        console.print(fails)
    flagged = [o for o in summary.outcomes if o.flags]
    if flagged:
        table = Table(title=f"{len(flagged)} slide(s) flagged by QC: kept, check before use")
        table.add_column("file")
        table.add_column("slide_id")
        table.add_column("flags", overflow="fold")
        for o in flagged:
            table.add_row(Path(o.path).name, o.slide_id or "", ", ".join(o.flags))
        console.print(table)
    stages = summary.stage_seconds()
    if stages:
        console.print("wall seconds per stage, summed over the slides processed: "
                      + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    console.print(f"per-slide results: {summary.work_dir}")
