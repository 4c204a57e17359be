"""A process that called ``die_with_parent`` ends when its parent is killed, through the Linux
parent-death signal and through the watchdog thread used where ``prctl`` is unavailable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("mechanism", ["prctl", "watchdog"])
def test_a_child_dies_when_its_parent_is_killed(mechanism):
    child = textwrap.dedent(f"""
        import os, time
        from immunodig.compute import parent_death
        if {mechanism!r} == "watchdog":
            parent_death._set_parent_death_signal = lambda signum: False
        print(parent_death.die_with_parent(os.getppid()), flush=True)
        time.sleep(60)
    """)
    parent = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {child!r}])
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=REPO, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    child_pid = int(proc.stdout.readline())
    try:
        assert proc.stdout.readline().strip() == mechanism
        proc.kill()
        proc.wait()
        t0 = time.monotonic()
        while _alive(child_pid) and time.monotonic() - t0 < 20:
            time.sleep(0.1)
        assert not _alive(child_pid), "the child outlived its killed parent"
    finally:
        if _alive(child_pid):
            os.kill(child_pid, 9)
        proc.kill()
