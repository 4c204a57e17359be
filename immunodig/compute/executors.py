"""Executors: run independent per-slide jobs in-process, on a local process pool, or on Slurm.

All executors take the same picklable function and jobs and yield outcomes as they finish, so
the driver code is identical whatever runs the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")

EXECUTORS: tuple[str, ...] = ("debug", "local", "slurm")


def run_inprocess(fn: Callable[[J, Any], R], jobs: Sequence[J], ctx: Any) -> Iterator[R]:
    """Run jobs one after the other in this process (``--executor debug``)."""
    for job in jobs:
        yield fn(job, ctx)


def run_process_pool(
    fn: Callable[[J, Any], R], jobs: Sequence[J], ctx: Any, workers: int
) -> Iterator[R]:
    """Run jobs on ``workers`` local processes (``--executor local``), yielding as they finish.

    Processes are started with ``spawn`` so each worker opens its own slide handles and model
    (no state forked from the parent, safe with torch and openslide).
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if workers <= 1:
        yield from run_inprocess(fn, jobs, ctx)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_limit_threads) as pool:
        futures = [pool.submit(fn, job, ctx) for job in jobs]
        for fut in as_completed(futures):
            yield fut.result()


def _limit_threads() -> None:
    """One compute thread per worker process: the pool provides the parallelism."""
    import torch

    torch.set_num_threads(1)
