"""Waiting on a Slurm array (no scheduler needed): results, failed tasks, vanished tasks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from submitit.core.utils import FailedJobError

from immunodig.compute.slurm import ABSENT_POLLS, collect

from . import jobs


class FakeTask:
    """Quacks like a ``submitit.Job`` for :func:`collect`."""

    def __init__(self, tmp: Path, task_id: str, result=None, error: Exception | None = None,
                 finished_after: int = 0):
        self.job_id = task_id
        self.state = "UNKNOWN"
        self.paths = SimpleNamespace(result_pickle=tmp / f"{task_id}.pkl",
                                     stderr=tmp / f"{task_id}.err")
        self._result, self._error, self._polls = result, error, finished_after

    def done(self) -> bool:
        self._polls -= 1
        return self._polls < 0 and (self._result is not None or self._error is not None)

    def result(self):
        if self._error is not None:
            raise self._error
        return self._result


def test_failed_and_vanished_tasks_become_lost_outcomes(tmp_path):
    (tmp_path / "7_2.err").write_text("slurmstepd: error: Detected 1 oom_kill event\n")
    tasks = [
        FakeTask(tmp_path, "7_0", result=[0, 1], finished_after=1),
        FakeTask(tmp_path, "7_1", error=FailedJobError("Job (task=1) failed: CANCELLED by 0")),
        FakeTask(tmp_path, "7_2"),  # killed: never done, gone from the queue
    ]
    shards = [[0, 1], [2, 3], [4]]
    polls = []

    def queued(array_ids):
        polls.append(set(array_ids))
        return {"7_0"} if len(polls) == 1 else set()

    outcomes = list(collect(tasks, shards, jobs.lost, poll_s=0, queued=queued))
    assert sorted(o for o in outcomes if isinstance(o, int)) == [0, 1]
    lost = {o[1]: o[2] for o in outcomes if isinstance(o, tuple)}
    assert sorted(lost) == [2, 3, 4]
    assert "7_1" in lost[2] and "CANCELLED" in lost[2] and lost[2] == lost[3]
    assert "7_2" in lost[4] and "oom_kill" in lost[4] and "7_2.err" in lost[4]
    assert polls[0] == {"7"} and len(polls) >= ABSENT_POLLS


def test_unknown_queue_state_waits_instead_of_giving_up(tmp_path):
    task = FakeTask(tmp_path, "8_0", result=["ok"], finished_after=3)
    assert list(collect([task], [["a"]], jobs.lost, poll_s=0, queued=lambda ids: None)) == ["ok"]


def test_failed_task_without_handler_raises(tmp_path):
    task = FakeTask(tmp_path, "9_0", error=FailedJobError("boom"))
    with pytest.raises(FailedJobError):
        list(collect([task], [["a"]], None, poll_s=0, queued=lambda ids: set()))
