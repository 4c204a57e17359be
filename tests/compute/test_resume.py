"""Real pipeline on generated slides: pool = in-process, kill and resume, redo truncated, status."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from immunodig import slide_folder as sf

from .conftest import N_SLIDES, REPO_ROOT, TILES_ONLY, build


def _same_slide(folder: Path, ref: Path) -> None:
    for name in (sf.FEATURES_PARQUET, sf.TILES_PARQUET):
        assert_frame_equal(pl.read_parquet(folder / name), pl.read_parquet(ref / name),
                           check_exact=False, rel_tol=1e-5, abs_tol=1e-6)
    assert json.loads((folder / sf.SLIDE_JSON).read_text()) == \
        json.loads((ref / sf.SLIDE_JSON).read_text())


def test_process_pool_gives_the_in_process_results(cohort, reference, tmp_path):
    pooled = build(cohort, tmp_path, executor="local", workers=2)
    assert pooled.status == reference.status
    for slide_id in reference.status:
        _same_slide(pooled.work / slide_id, reference.work / slide_id)
    assert pooled.counts == reference.counts


def _manifest_mtimes(work: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in work.glob(f"s_*/{sf.MANIFEST_JSON}")}


def test_killed_local_run_resumes_with_only_unfinished_slides(cohort, reference, tmp_path):
    store, work = tmp_path / "store.duckdb", tmp_path / "slides"
    cmd = [sys.executable, "cli.py", "build-features", str(cohort.slides_dir), "--store",
           str(store), "--work-dir", str(work), "--manifest", str(cohort.manifest), "--nuclei-backend", "none",
           "--workers", "2", "--quiet"]
    with open(tmp_path / "killed_run.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 240
        while not _manifest_mtimes(work):
            assert proc.poll() is None, (tmp_path / "killed_run.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "no slide finished within 240 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and both workers, mid-way
        proc.wait(timeout=30)
    finished = _manifest_mtimes(work)
    assert 1 <= len(finished) < N_SLIDES

    resumed = build(cohort, tmp_path, executor="local", workers=2)
    assert {s for s, st in resumed.status.items() if st == "skipped"} == set(finished)
    assert {s for s, st in resumed.status.items() if st == "done"} == \
        set(reference.status) - set(finished)
    after = _manifest_mtimes(work)
    assert {s: after[s] for s in finished} == finished  # finished slides were not rewritten
    assert resumed.counts == reference.counts
    for slide_id in reference.status:
        _same_slide(work / slide_id, reference.work / slide_id)


def test_truncated_file_is_detected_and_redone(cohort, reference, tmp_path):
    work = tmp_path / "slides"
    shutil.copytree(reference.work, work)
    victim = sorted(reference.status)[0]
    tiles = work / victim / sf.TILES_PARQUET
    data = tiles.read_bytes()
    tiles.write_bytes(data[: len(data) // 2])
    assert not sf.is_complete(work / victim, json.loads(
        (work / victim / sf.MANIFEST_JSON).read_text())["run_id"])

    rerun = build(cohort, tmp_path, executor="debug")
    assert rerun.status[victim] == "done"
    assert all(st == "skipped" for s, st in rerun.status.items() if s != victim)
    assert tiles.read_bytes() != data[: len(data) // 2]
    _same_slide(work / victim, reference.work / victim)
    assert rerun.counts == reference.counts


def test_status_lists_done_failed_and_pending(cohort, reference, tmp_path):
    from immunodig.cli.app import app

    slides = tmp_path / "slides_in"
    shutil.copytree(cohort.slides_dir, slides)
    (slides / "broken.tiff").write_bytes(b"II*\x00 this is not a slide")
    work = tmp_path / "slides"
    shutil.copytree(reference.work, work)
    from immunodig.pipeline.build import build_features

    store = tmp_path / "store.duckdb"
    manifest = tmp_path / "slides.csv"  # every slide needs a manifest row, the broken one too
    manifest.write_text(cohort.manifest.read_text().rstrip("\n") + "\nbroken.tiff,P9999,HE\n")
    summary = build_features([slides], store, TILES_ONLY, manifest=manifest, work_dir=work,
                             executor="debug", show_progress=False)
    assert sorted(o.status for o in summary.outcomes) == ["failed"] + ["skipped"] * N_SLIDES
    reason = summary.failed[0].reason
    interrupted = work / "s_00000000deadbeef"  # a worker killed before its manifest
    interrupted.mkdir()
    shutil.copy(reference.work / sorted(reference.status)[0] / sf.SLIDE_JSON, interrupted)

    result = CliRunner().invoke(app, ["status", "--store", str(store), "--work-dir", str(work)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"done: {N_SLIDES}" in result.output
    assert "failed: 1" in result.output and "pending: 1" in result.output
    assert reason in result.output and "s_00000000deadbeef" in result.output
    for slide_id in reference.status:
        assert slide_id in result.output
