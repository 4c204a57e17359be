"""Executors: run independent per-slide jobs in-process, on a local process pool, or on Slurm.

All executors take the same picklable function ``fn(job, ctx) -> outcome`` and the same jobs,
and yield outcomes as they finish, so the driver code is identical whatever runs the work.
``fn`` is expected to catch its own errors and return them as outcomes; what an executor
cannot leave to ``fn`` is a worker that dies (killed by the out-of-memory killer, a crash in
native code, a cancelled Slurm task). Executors turn such a loss into an outcome too, through
the caller's ``on_lost(job, message)``, so one lost worker never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")

#: Builds the outcome of a job whose worker died: ``on_lost(job, message) -> outcome``.
LostHandler = Callable[[Any, str], Any]

EXECUTORS: tuple[str, ...] = ("debug", "local", "slurm")

#: Slurm client commands the Slurm executor needs on PATH (submitit submits with ``sbatch`` and
#: refuses to start without ``srun``).
SLURM_COMMANDS: tuple[str, ...] = ("sbatch", "srun")


def check_executor(name: str) -> None:
    """Refuse an executor that cannot run here, before anything is recorded.

    Raises
    ------
    ConfigError
        ``name`` is not one of :data:`EXECUTORS`, or it is ``slurm`` and a command of
        :data:`SLURM_COMMANDS` is not on ``PATH`` (not a Slurm login node).
    """
    import shutil

    from immunodig.errors import ConfigError

    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
    if name == "slurm":
        missing = [c for c in SLURM_COMMANDS if shutil.which(c) is None]
        if missing:
            raise ConfigError(f"--executor slurm needs the Slurm commands on PATH, but "
                              f"{' and '.join(missing)} not found: run on a Slurm login node "
                              "(or `module load slurm`), or use --executor local")


def run_inprocess(fn: Callable[[J, Any], R], jobs: Sequence[J], ctx: Any) -> Iterator[R]:
    """Run jobs one after the other in this process (``--executor debug``)."""
    for job in jobs:
        yield fn(job, ctx)


def run_process_pool(
    fn: Callable[[J, Any], R],
    jobs: Sequence[J],
    ctx: Any,
    workers: int,
    on_lost: LostHandler | None = None,
) -> Iterator[R]:
    """Run jobs on ``workers`` local processes (``--executor local``), yielding as they finish.

    Processes are started with ``spawn`` so each worker opens its own slide handles and model
    (no state forked from the parent, safe with torch and openslide); each uses one compute
    thread, the pool providing the parallelism. Workers die with this process even when it is
    killed (:mod:`immunodig.compute.parent_death`), ignore SIGINT (a Ctrl-C is the driver's to
    handle) and are terminated, not waited for, when the consumer stops on an exception (e.g.
    :class:`~immunodig.errors.BuildInterrupted`).

    When a worker process dies, the jobs that were running then are suspects: each is rerun
    alone in a fresh process, and one that kills its worker again is reported through
    ``on_lost(job, message)`` (raised as ``BrokenProcessPool`` without ``on_lost``). The other
    jobs carry on in a new pool, so one bad slide costs no one else's result.

    Parameters
    ----------
    fn : callable
        Picklable module-level function ``fn(job, ctx) -> outcome``.
    jobs : sequence
        Picklable jobs.
    ctx : object
        Picklable context shared by all jobs.
    workers : int
        Number of processes; ``<= 1`` runs in-process.
    on_lost : callable, optional
        ``on_lost(job, message) -> outcome`` for jobs whose worker died.

    Yields
    ------
    object
        One outcome per job, in completion order.
    """
    from concurrent.futures.process import BrokenProcessPool

    if workers <= 1:
        yield from run_inprocess(fn, jobs, ctx)
        return
    queue = list(range(len(jobs)))
    while queue:
        finished: set[int] = set()
        suspects: list[int] = []
        for index, outcome in _pool_round(fn, jobs, queue, ctx, workers, suspects):
            finished.add(index)
            yield outcome
        left = [i for i in queue if i not in finished and i not in suspects]
        if left and not finished and not suspects:
            raise BrokenProcessPool("worker processes die before running any job; try "
                                    "--executor debug to see the error")
        queue = left
        for index in suspects:
            alone = list(_pool_round(fn, jobs, [index], ctx, 1, []))
            if alone:
                yield alone[0][1]
            else:
                message = ("the worker process died while processing this slide, twice (killed "
                           "by the operating system, e.g. out of memory, or a native crash)")
                if on_lost is None:
                    raise BrokenProcessPool(message)
                yield on_lost(jobs[index], message)


def _pool_round(fn, jobs, indices, ctx, workers: int, suspects: list[int]):
    """One pool's lifetime: yield ``(index, outcome)`` until done or until a worker dies.

    On a crash, ``suspects`` receives the jobs that had started but not finished; jobs still
    queued are left for the caller to resubmit.
    """
    import multiprocessing as mp
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = mp.get_context("spawn")
    started_queue = context.SimpleQueue()
    pool = ProcessPoolExecutor(max_workers=min(workers, len(indices)), mp_context=context,
                               initializer=_init_worker, initargs=(started_queue, os.getpid()))
    try:
        futures = {pool.submit(_run_announced, fn, i, jobs[i], ctx): i for i in indices}
        pending, completed = set(futures), set()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                try:
                    outcome = fut.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                completed.add(futures[fut])
                yield futures[fut], outcome
            if broken:
                started = set()
                while not started_queue.empty():
                    started.add(started_queue.get())
                suspects.extend(sorted(started - completed))
                return
    except BaseException:  # interrupted, or the consumer stopped: do not wait for running jobs
        _terminate_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        started_queue.close()


_STARTED = None  # in a worker: the queue on which it announces each job it starts


def _init_worker(started_queue, parent_pid: int) -> None:
    import signal

    from immunodig.compute.parent_death import die_with_parent

    global _STARTED
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _STARTED = started_queue
    _limit_threads()


def _terminate_workers(pool) -> None:
    """Stop a pool's worker processes now (SIGTERM), jobs still running included."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


def _run_announced(fn, index: int, job, ctx):
    """Worker side: say which job starts (so a crash can be pinned on it), then run it."""
    _STARTED.put(index)
    return fn(job, ctx)


def _limit_threads() -> None:
    """One compute thread per worker process: the pool provides the parallelism.

    Set through the environment before torch or numpy's BLAS is imported by a job, so workers
    whose job function never needs torch do not pay for importing it.
    """
    import os
    import sys

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
