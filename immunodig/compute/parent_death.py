"""Worker processes die with their driver.

A local pool's workers are separate processes: when the driver is killed (``kill -9``, the
out-of-memory killer), nothing else stops them, and they would sit idle, or finish their
slide, for ever. :func:`die_with_parent` runs in each worker at start-up.

On Linux the kernel does it: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` sends the worker SIGKILL the
moment the process (strictly: the thread) that started it exits. Elsewhere (macOS, other
POSIX) a daemon thread polls ``os.getppid()`` once a second and ends the worker when it changes
(the orphan was adopted), so a worker outlives its driver by about a second. Windows is not
covered: its ``getppid`` does not change when the parent dies.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
PR_SET_PDEATHSIG = 1

#: Seconds between two ``getppid`` checks of the watchdog thread (non-Linux).
WATCHDOG_INTERVAL_S = 1.0


def die_with_parent(parent_pid: int) -> str:
    """Make this process end when ``parent_pid`` (its parent) ends; return the mechanism used.

    Returns ``"prctl"`` (Linux) or ``"watchdog"``. Exits at once when the parent is already
    gone (it died while this process was starting).
    """
    mechanism = "prctl" if _set_parent_death_signal(signal.SIGKILL) else "watchdog"
    if mechanism == "watchdog":
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watchdog",
                         daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    return mechanism


def _set_parent_death_signal(signum: int) -> bool:
    """Linux: ask the kernel to send ``signum`` when the parent exits; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    import time

    while os.getppid() == parent_pid:
        time.sleep(WATCHDOG_INTERVAL_S)
    os._exit(1)
