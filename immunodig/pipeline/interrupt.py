"""SIGTERM and SIGINT stop a build cleanly instead of killing its driver mid-way.

While :func:`interrupt_on_signals` is active, the first SIGTERM or SIGINT raises
:class:`~immunodig.errors.BuildInterrupted` in the main thread: the executor terminates its
workers, the driver stores the slides already finished and marks the run ``interrupted``. The
previous handlers are put back at once, so a second signal acts as usual (a second Ctrl-C or
SIGTERM stops the clean-up itself; the next build then marks the run interrupted).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from immunodig.errors import BuildInterrupted

#: Signals that interrupt a build.
INTERRUPT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Turn SIGTERM / SIGINT into :class:`BuildInterrupted` for the block (main thread only;
    elsewhere, where Python cannot install handlers, a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in INTERRUPT_SIGNALS}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def interrupt(signum: int, frame) -> None:
        restore()
        raise BuildInterrupted(signum, f"stopped by {signal.Signals(signum).name}")

    for s in INTERRUPT_SIGNALS:
        signal.signal(s, interrupt)
    try:
        yield
    finally:
        restore()
