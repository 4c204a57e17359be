"""Issue 13: killing the driver of ``build-features --workers 2`` (SIGKILL or SIGTERM) leaves no
worker process behind; SIGTERM also stores what finished and marks the run interrupted.

Linux only (processes are found through ``/proc``). Each test polls with a deadline rather than
sleeping, so a loaded machine makes it slower, not flaky.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from immunodig import slide_folder as sf
from immunodig.store import Store, query

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 20.0

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


@pytest.fixture(scope="module")
def slides(tmp_path_factory) -> Path:
    """Four small generated slides: enough work that the build is still running when killed."""
    from immunodig.synthetic.slide import make_slide

    folder = tmp_path_factory.mktemp("slides")
    for seed in range(4):
        make_slide(folder / f"s{seed}.tiff", seed, slide_mm=0.6)
    return folder


def _alive_in_group(pgid: int) -> dict[int, str]:
    """Live (not zombie) processes of process group ``pgid``: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # exited meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def _poll(condition, what: str, deadline_s: float = DEADLINE_S):
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline_s:.0f} s: {what}")


def _build_with_two_workers(slides: Path, store: Path) -> subprocess.Popen:
    """Start the build in its own process group (pgid = driver pid) and wait for its workers."""
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "build-features", str(slides), "--store", str(store),
         "--workers", "2", "--nuclei-backend", "none", "--quiet"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def workers():
        return [p for p, cmd in _alive_in_group(proc.pid).items() if "spawn_main" in cmd]

    try:
        _poll(lambda: len(workers()) >= 2, "two worker processes started")
    except AssertionError:
        proc.kill()
        raise
    return proc


def _no_process_left(proc: subprocess.Popen) -> None:
    try:
        _poll(lambda: not _alive_in_group(proc.pid), "every worker gone with the driver")
    finally:
        for pid in _alive_in_group(proc.pid):  # do not leave them to the next test
            os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_driver_takes_its_workers_down(tmp_path, slides):
    store = tmp_path / "s.duckdb"
    proc = _build_with_two_workers(slides, store)
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed mid-build, not finished before
    _no_process_left(proc)
    with Store.open(store):  # nothing holds the writer lock any more
        pass


def test_sigterm_stops_workers_and_marks_the_run_interrupted(tmp_path, slides):
    store = tmp_path / "s.duckdb"
    proc = _build_with_two_workers(slides, store)
    proc.send_signal(signal.SIGTERM)
    try:  # a worker left alive keeps stderr open: communicate then times out
        _, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        _no_process_left(proc)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted: stopped by SIGTERM" in err and "marked interrupted" in err
    runs = query(store, "select status, n_slides_finished from runs")
    assert runs["status"].to_list() == ["interrupted"]
    # every published slide folder is whole: a valid result or a failure record
    work = sf.default_work_dir(store)
    folders = [f for f in work.iterdir() if f.name != ".partial"] if work.is_dir() else []
    for folder in folders:
        assert sf.holds_valid_result(folder) or (folder / sf.FAILURE_JSON).is_file(), folder
    assert runs["n_slides_finished"][0] == sum(sf.holds_valid_result(f) for f in folders)
