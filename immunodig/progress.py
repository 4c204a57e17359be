"""Progress reporting: a live bar on a terminal, periodic log lines otherwise (cluster logs)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    """Counts units of work and reports them.

    On a terminal it draws a rich progress bar; when output is not a terminal (batch jobs,
    CI) it prints one line at most every ``interval_s`` seconds and a final line.

    Parameters
    ----------
    total : int
        Number of units expected.
    label : str
        What is being counted, e.g. ``"slides"``.
    enabled : bool
        ``False`` silences all output.
    interval_s : float
        Minimum seconds between log lines when not on a terminal.
    """

    def __init__(self, total: int, label: str, enabled: bool = True, interval_s: float = 30.0) -> None:
        self.total, self.label, self.enabled, self.interval_s = total, label, enabled, interval_s
        self.done = 0
        self._start = self._last = time.monotonic()
        self._bar = None
        self._task = None
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int = 1, note: str = "") -> None:
        """Record ``n`` finished units; ``note`` (e.g. a slide id) goes into log lines."""
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
            return
        now = time.monotonic()
        if now - self._last >= self.interval_s or self.done >= self.total:
            self._last = now
            rate = self.done / max(now - self._start, 1e-9)
            print(f"[{self.label}] {self.done}/{self.total} ({rate:.2f}/s) {note}".rstrip(),
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop the bar."""
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def progress(total: int, label: str, enabled: bool = True) -> Iterator[Progress]:
    """Context manager around :class:`Progress`."""
    p = Progress(total, label, enabled)
    try:
        yield p
    finally:
        p.close()
