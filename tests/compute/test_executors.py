"""Executors with stand-in job functions: same results everywhere, dead workers reported."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

import pytest

from immunodig.compute import run_inprocess, run_process_pool
from immunodig.compute.slurm import SlurmOptions, shard
from immunodig.errors import ConfigError

from . import jobs


def test_pool_gives_inprocess_results_using_several_processes():
    serial = sorted(run_inprocess(jobs.square, range(8), 3))
    pooled = sorted(run_process_pool(jobs.square, range(8), 3, workers=2))
    assert [r[:2] for r in pooled] == [r[:2] for r in serial] == [(i, i * i + 3) for i in range(8)]
    assert len({r[2] for r in pooled}) == 2  # two worker processes did the work


def test_dead_worker_is_reported_and_others_finish():
    outcomes = list(run_process_pool(jobs.die_on, range(6), 3, workers=2, on_lost=jobs.lost))
    done = sorted(o for o in outcomes if isinstance(o, int))
    lost = [o for o in outcomes if isinstance(o, tuple)]
    assert done == [0, 1, 2, 4, 5]
    assert len(lost) == 1 and lost[0][:2] == ("lost", 3)
    assert "died" in lost[0][2]


def test_dead_worker_without_handler_raises():
    with pytest.raises(BrokenProcessPool):
        list(run_process_pool(jobs.die_on, range(2), 0, workers=2))


def test_shards_cover_jobs_in_order():
    assert shard(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert shard([1], 4) == [[1]]
    assert shard([], 4) == []


def test_slurm_options_map_to_submitit_parameters():
    opts = SlurmOptions(slides_per_task=2, array_parallelism=8, partition="gpu", account="lab",
                        qos="short", gpus_per_task=1, cpus_per_task=8, mem_gb=32, time_min=30,
                        setup=("module load cuda",))
    params = opts.executor_parameters()
    assert params == {
        "name": "immunodig-build", "timeout_min": 30, "cpus_per_task": 8, "mem_gb": 32,
        "slurm_array_parallelism": 8, "gpus_per_node": 1, "slurm_partition": "gpu",
        "slurm_account": "lab", "slurm_qos": "short", "slurm_setup": ["module load cuda"],
    }
    assert "gpus_per_node" not in SlurmOptions().executor_parameters()
    with pytest.raises(ConfigError, match="slides_per_task"):
        SlurmOptions(slides_per_task=0)
