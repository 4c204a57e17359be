"""``build-features --executor slurm`` end to end on a throw-away single-node Slurm.

Deselected by default (``-m slurm``); skips with the reason when Slurm cannot be installed or
started here (not root, no apt, daemons failing). Measured on the 2-core dev VM: apt install
~20 s when missing, cluster start ~1-3 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from immunodig import slide_folder as sf

from . import jobs
from .conftest import REPO_ROOT, store_counts
from .slurm_cluster import SlurmUnavailable, start_cluster

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running single-node cluster; ``SLURM_CONF`` set for this process while it lives."""
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except SlurmUnavailable as exc:
        pytest.skip(f"no local Slurm: {exc}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    print(f"slurm: install {cluster.install_s:.1f} s, start {cluster.start_s:.1f} s")
    yield cluster
    cluster.stop()
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def test_build_features_through_slurm_end_to_end(slurm, cohort, reference, tmp_path):
    store, work = tmp_path / "store.duckdb", tmp_path / "slides"
    cmd = [sys.executable, "cli.py", "build-features", str(cohort.slides_dir), "--store",
           str(store), "--work-dir", str(work), "--manifest", str(cohort.manifest), "--nuclei-backend", "none",
           "--executor", "slurm", "--slides-per-task", "2", "--array-parallelism", "2",
           "--cpus", "1", "--mem-gb", "1", "--time-min", "10", "--quiet"]
    out = subprocess.run(cmd, cwd=REPO_ROOT, env=slurm.env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert store_counts(store) == reference.counts
    for slide_id in reference.status:
        run_id = sf.read_manifest(reference.work / slide_id)["run_id"]
        assert sf.is_complete(work / slide_id, run_id)
    # The work ran as an array of ceil(3 / 2) = 2 tasks whose logs are on the shared folder.
    arrays = [p for p in (work / "slurm_logs").iterdir() if p.is_dir()]
    assert len(arrays) == 1
    assert len(list(arrays[0].glob("*_log.out"))) == 2

    # A rerun submits nothing: every slide is valid already, so no new array appears.
    again = subprocess.run(cmd, cwd=REPO_ROOT, env=slurm.env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert [p for p in (work / "slurm_logs").iterdir() if p.is_dir()] == arrays
    assert store_counts(store) == reference.counts


def test_killed_array_task_becomes_failed_outcomes(slurm, tmp_path, monkeypatch):
    from immunodig.compute import SlurmOptions, run_slurm

    # Tasks must import this test package's job functions.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    options = SlurmOptions(slides_per_task=2, array_parallelism=2, cpus_per_task=1, mem_gb=1,
                           time_min=5, log_dir=str(tmp_path / "logs"), poll_s=1)
    outcomes = list(run_slurm(jobs.die_on, [0, 1, 2, 3, 4], 3, options, on_lost=jobs.lost))
    assert sorted(o for o in outcomes if isinstance(o, int)) == [0, 1, 4]
    lost = {o[1]: o[2] for o in outcomes if isinstance(o, tuple)}
    assert sorted(lost) == [2, 3]  # the whole shard of the killed task
    assert "Slurm array task" in lost[2] and "_1" in lost[2] and "log" in lost[2]
