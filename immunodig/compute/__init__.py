"""Executors for independent per-slide work (in-process, local pool, Slurm via submitit)."""

from immunodig.compute.executors import (
    EXECUTORS,
    LostHandler,
    check_executor,
    run_inprocess,
    run_process_pool,
)
from immunodig.compute.slurm import SlurmOptions, run_slurm

__all__ = ["EXECUTORS", "LostHandler", "SlurmOptions", "check_executor", "run_inprocess",
           "run_process_pool", "run_slurm"]
