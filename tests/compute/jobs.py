"""Module-level job functions for executor tests (importable by spawned workers)."""

from __future__ import annotations

import os
import time


def square(job: int, ctx: int) -> tuple[int, int, int]:
    """``(job, job * job + ctx, worker pid)``, slow enough for every worker to take a job."""
    time.sleep(0.3)
    return job, job * job + ctx, os.getpid()


def die_on(job: int, ctx: int) -> int:
    """Kill the worker process outright (as the OOM killer would) when ``job == ctx``."""
    if job == ctx:
        os._exit(9)
    return job


def lost(job: int, message: str) -> tuple[str, int, str]:
    """Outcome for a job whose worker died."""
    return "lost", job, message
