"""Slurm job arrays through submitit: shards of slides per array task.

Array tasks run the same per-slide function as the local executors and write only per-slide
folders on the shared file system; they never open the DuckDB store. The submitting process
waits for the array and the driver then ingests the finished folders (or, if it was
interrupted, ``python cli.py ingest`` does later).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SlurmOptions:
    """Scheduler resources for each array task.

    Parameters
    ----------
    slides_per_task : int
        Shard size: slides processed one after another by one array task.
    array_parallelism : int
        Maximum number of array tasks running at once.
    partition, account, qos : str, optional
        Passed to sbatch as is.
    gpus_per_task, cpus_per_task : int
        Resources per task (GPU inference when ``gpus_per_task >= 1``).
    mem_gb : int
        Memory per task.
    time_min : int
        Wall-time limit per task, minutes.
    log_dir : str
        Folder on the shared file system for submitit's pickles and logs.
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
    log_dir: str = "slurm_logs"


def _run_shard(fn: Callable, shard: list, ctx: Any) -> list:
    """Array-task body: process a shard of slides, one after another."""
    return [fn(job, ctx) for job in shard]


def shard(jobs: Sequence, size: int) -> list[list]:
    """Split jobs into consecutive shards of at most ``size``."""
    size = max(1, size)
    return [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]


def run_slurm(fn: Callable, jobs: Sequence, ctx: Any,
              options: SlurmOptions | None = None) -> Iterator:
    """Submit the jobs as one Slurm array and yield outcomes as array tasks finish."""
    import submitit

    options = options or SlurmOptions()
    if not jobs:
        return
    executor = submitit.AutoExecutor(folder=Path(options.log_dir) / "%A", cluster="slurm")
    params: dict[str, Any] = {
        "timeout_min": options.time_min,
        "cpus_per_task": options.cpus_per_task,
        "mem_gb": options.mem_gb,
        "slurm_array_parallelism": options.array_parallelism,
        "name": "immunodig-build",
    }
    if options.gpus_per_task:
        params["gpus_per_node"] = options.gpus_per_task
    if options.partition:
        params["slurm_partition"] = options.partition
    extra = {k: v for k, v in (("account", options.account), ("qos", options.qos)) if v}
    if extra:
        params["slurm_additional_parameters"] = extra
    executor.update_parameters(**params)
    shards = shard(jobs, options.slides_per_task)
    submitted = executor.map_array(_run_shard, [fn] * len(shards), shards, [ctx] * len(shards))
    for job in submitit.helpers.as_completed(submitted):
        yield from job.result()
