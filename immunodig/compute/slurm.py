"""Slurm job arrays through submitit: shards of slides per array task.

Array tasks run the same per-slide function as the local executors and write only per-slide
folders on the shared file system; they never open the DuckDB store. The submitting process
waits for the array and the driver then ingests the finished folders (or, if it was
interrupted, ``python cli.py ingest`` does later: the array keeps running without it).

A task that ends without results (cancelled, timed out, out of memory, node failure) does not
stop the build: every slide of its shard becomes an outcome built by ``on_lost`` with the
scheduler's message. Slides of that shard that were finished before the task died stay valid
on disk, and a rerun skips them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunodig.compute.executors import LostHandler
from immunodig.errors import ConfigError

logger = logging.getLogger(__name__)

#: Polls a finished task may stay out of ``squeue`` without a result before it counts as lost.
ABSENT_POLLS = 2


@dataclass(frozen=True)
class SlurmOptions:
    """Scheduler resources for each array task.

    Parameters
    ----------
    slides_per_task : int
        Shard size: slides processed one after another by one array task.
    array_parallelism : int
        Maximum number of array tasks running at once (``--array=0-N%P``).
    partition, account, qos : str, optional
        Passed to sbatch as is.
    gpus_per_task : int
        GPUs per task (``--gpus-per-node``; the tissue and nuclei models use the GPU if any).
    cpus_per_task : int
        CPU cores per task; also the number of torch threads in the task.
    mem_gb : int
        Memory per task, GB.
    time_min : int
        Wall-time limit per task, minutes: allow ``slides_per_task`` times the slowest slide.
    log_dir : str, optional
        Folder on the shared file system for submitit's pickles and logs (one sub-folder per
        array job); ``build_features`` defaults it to ``<work_dir>/slurm_logs``.
    setup : tuple of str
        Shell lines run at the start of each task (e.g. ``module load cuda``).
    poll_s : float
        Seconds between two looks at the array while waiting.
    """

    slides_per_task: int = 4
    array_parallelism: int = 64
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 4
    mem_gb: int = 16
    time_min: int = 120
    log_dir: str | None = None
    setup: tuple[str, ...] = ()
    poll_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("slides_per_task", "array_parallelism", "cpus_per_task", "mem_gb",
                     "time_min"):
            if getattr(self, name) < 1:
                raise ConfigError(f"Slurm option {name}={getattr(self, name)} must be >= 1")
        if self.gpus_per_task < 0:
            raise ConfigError(f"Slurm option gpus_per_task={self.gpus_per_task} must be >= 0")

    def executor_parameters(self) -> dict[str, Any]:
        """The options as ``submitit.AutoExecutor.update_parameters`` keywords."""
        params: dict[str, Any] = {
            "name": "immunodig-build",
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb,
            "slurm_array_parallelism": self.array_parallelism,
        }
        if self.gpus_per_task:
            params["gpus_per_node"] = self.gpus_per_task
        optional = {"slurm_partition": self.partition, "slurm_account": self.account,
                    "slurm_qos": self.qos, "slurm_setup": list(self.setup) or None}
        params.update({k: v for k, v in optional.items() if v})
        return params


def shard(jobs: Sequence, size: int) -> list[list]:
    """Split jobs into consecutive shards of at most ``size``."""
    size = max(1, size)
    return [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]


def _run_shard(fn: Callable, shard_jobs: list, ctx: Any) -> list:
    """Array-task body: process a shard of slides one after another, with the task's cores."""
    cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", "1"))
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(max(1, cpus))
    return [fn(job, ctx) for job in shard_jobs]


def run_slurm(fn: Callable, jobs: Sequence, ctx: Any, options: SlurmOptions | None = None,
              on_lost: LostHandler | None = None,
              precheck: Callable[[Any, Any], Any] | None = None) -> Iterator:
    """Submit the pending jobs as one Slurm array and yield outcomes as array tasks finish.

    Parameters
    ----------
    fn : callable
        Module-level function ``fn(job, ctx) -> outcome`` run inside the array tasks.
    jobs : sequence
        Picklable jobs, cut into shards of ``options.slides_per_task``.
    ctx : object
        Picklable context shared by all jobs.
    options : SlurmOptions, optional
        Resources and array shape.
    on_lost : callable, optional
        ``on_lost(job, message) -> outcome`` for each job of a task that ended without
        results; without it such a task raises ``submitit``'s ``UncompletedJobError``.
    precheck : callable, optional
        ``precheck(job, ctx) -> outcome or None``, run here before submitting: a job with an
        outcome already (a valid result on disk) is yielded at once and not submitted.
    """
    import submitit

    from immunodig.compute.executors import check_executor

    check_executor("slurm")  # a clear ConfigError instead of submitit's RuntimeError
    options = options or SlurmOptions()
    if precheck is not None:
        pending = []
        for job in jobs:
            outcome = precheck(job, ctx)
            if outcome is None:
                pending.append(job)
            else:
                yield outcome
        jobs = pending
    if not jobs:
        return
    log_dir = Path(options.log_dir or "slurm_logs")
    executor = submitit.AutoExecutor(folder=log_dir / "%A", cluster="slurm")
    executor.update_parameters(**options.executor_parameters())
    shards = shard(jobs, options.slides_per_task)
    tasks = executor.map_array(_run_shard, [fn] * len(shards), shards, [ctx] * len(shards))
    array_id = tasks[0].job_id.split("_")[0]
    logger.info("submitted Slurm array %s: %d tasks for %d slides; logs in %s",
                array_id, len(tasks), len(jobs), log_dir / array_id)
    yield from collect(tasks, shards, on_lost, options.poll_s)


def collect(tasks: Sequence, shards: Sequence[list], on_lost: LostHandler | None,
            poll_s: float, queued: Callable[[set[str]], set[str] | None] | None = None,
            ) -> Iterator:
    """Wait for submitit array tasks; yield their outcomes, or lost outcomes for failed tasks.

    A task is finished when its result file exists, when submitit (through ``sacct``) says so,
    or when it has been absent from ``squeue`` for :data:`ABSENT_POLLS` polls without a result
    (so a cluster without job accounting cannot make the wait hang on a killed task).

    Parameters
    ----------
    tasks : sequence of submitit.Job
        One per shard, same order as ``shards``.
    shards : sequence of list
        The jobs of each task.
    on_lost : callable or None
        Builds the outcome of each job of a failed task; ``None`` re-raises the task's error.
    poll_s : float
        Seconds between polls.
    queued : callable, optional
        ``queued(array_ids) -> task ids still in the queue`` (``None`` when unknown);
        defaults to asking ``squeue``.
    """
    from submitit.core.utils import UncompletedJobError

    queued = queued or _squeue
    pending = dict(enumerate(tasks))
    absent = dict.fromkeys(pending, 0)
    while pending:
        in_queue = queued({t.job_id.split("_")[0] for t in pending.values()})
        for i, task in list(pending.items()):
            if task.paths.result_pickle.exists() or task.done():
                del pending[i]
                try:
                    outcomes = task.result()
                except UncompletedJobError as exc:
                    if on_lost is None:
                        raise
                    outcomes = [on_lost(job, _task_message(task, str(exc))) for job in shards[i]]
                yield from outcomes
            elif in_queue is not None and task.job_id not in in_queue:
                absent[i] += 1
                if absent[i] >= ABSENT_POLLS:
                    del pending[i]
                    message = _task_message(task, f"left the queue without results "
                                                  f"(state {task.state})\n{_log_tail(task)}")
                    if on_lost is None:
                        raise UncompletedJobError(message)
                    yield from (on_lost(job, message) for job in shards[i])
            else:
                absent[i] = 0
        if pending:
            time.sleep(poll_s)


def _task_message(task, detail: str, max_chars: int = 2000) -> str:
    """Scheduler message for a lost task: task id, state, log path and the end of its log."""
    text = f"Slurm array task {task.job_id} failed: {detail.strip()}\nlog: {task.paths.stderr}"
    return text if len(text) <= max_chars else text[:200] + "\n...\n" + text[-(max_chars - 205):]


def _log_tail(task, n_lines: int = 15) -> str:
    """Last lines of the task's error log (empty when it never started)."""
    try:
        lines = Path(task.paths.stderr).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log: the task never started)"
    return "\n".join(lines[-n_lines:])


def _squeue(array_ids: set[str]) -> set[str] | None:
    """Task ids (``<array>_<index>``) of these arrays still pending or running; None if unknown."""
    if not array_ids:
        return set()
    try:
        out = subprocess.run(["squeue", "--noheader", "--array", "--format=%i",
                              "--jobs", ",".join(sorted(array_ids))],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        # squeue fails for job ids the controller has already purged: all of them are gone.
        return set() if "Invalid job id" in out.stderr else None
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}
