"""Executors for independent per-slide work (in-process, local pool, Slurm via submitit)."""

from immunodig.compute.executors import EXECUTORS, run_inprocess, run_process_pool

__all__ = ["EXECUTORS", "run_inprocess", "run_process_pool"]
