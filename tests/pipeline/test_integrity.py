"""Issue 13, pipeline side: one writer for the whole build, stale results never reused,
interrupted runs marked, model/grid mismatches refused before any slide is opened."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from immunodig.config import BuildConfig
from immunodig.errors import ConfigError, StoreLockedError
from immunodig.pipeline.build import build_features
from immunodig.store import Store, query

REPO = Path(__file__).resolve().parents[2]
TILES_ONLY = BuildConfig(nuclei_backend=None)


@pytest.fixture(scope="module")
def slide_without_mpp(tmp_path_factory) -> Path:
    """One small generated slide whose file carries no microns-per-pixel."""
    from immunodig.synthetic.slide import make_slide

    folder = tmp_path_factory.mktemp("nompp")
    make_slide(folder / "a.tiff", 5, slide_mm=0.8, write_mpp=False)
    return folder / "a.tiff"


def _hold_lock(store: Path, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import time
        from immunodig.store.writer_lock import WriterLock
        with WriterLock({str(store)!r}, "another build"):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_at_once_while_a_build_holds_the_store(tmp_path):
    store = tmp_path / "s.duckdb"
    with Store.open(store):
        pass
    proc = _hold_lock(store, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreLockedError, match="another build"):
            build_features([tmp_path], store, TILES_ONLY, show_progress=False)
        with pytest.raises(StoreLockedError, match="another build"):
            Store.open(store)  # what import-clinical does
        assert time.monotonic() - t0 < 20  # refused at once, no slide processed
        assert query(store, "select count(*) as n from runs")["n"][0] == 0  # readers still read
    finally:
        proc.kill()
        proc.wait()
    with Store.open(store):  # the kernel dropped the dead holder's lock
        pass


def test_a_killed_run_is_marked_interrupted_by_the_next_build(tmp_path, slide_without_mpp):
    store = tmp_path / "s.duckdb"
    with Store.open(store) as s:
        s.record_run(run_id="r_killed", code_version="0", config={}, config_hash="x",
                     model_hashes={})
    build_features([slide_without_mpp], store, TILES_ONLY.with_(mpp_override=0.5),
                   show_progress=False, executor="debug")
    runs = dict(query(store, "select run_id, status from runs").iter_rows())
    assert runs["r_killed"] == "interrupted"
    assert set(runs.values()) == {"interrupted", "done"}


def test_correcting_mpp_recomputes_the_slide(tmp_path, slide_without_mpp):
    store = tmp_path / "s.duckdb"
    first = build_features([slide_without_mpp], store, TILES_ONLY.with_(mpp_override=0.5),
                           show_progress=False, executor="debug")
    area_sql = "select value from slide_features_current where feature = 'area_tissue_mm2'"
    first_area = query(store, area_sql)["value"][0]
    again = build_features([slide_without_mpp], store, TILES_ONLY.with_(mpp_override=0.5),
                           show_progress=False, executor="debug")
    fixed = build_features([slide_without_mpp], store, TILES_ONLY.with_(mpp_override=0.25),
                           show_progress=False, executor="debug")
    assert [o.status for o in first.outcomes] == ["done"]
    assert [o.status for o in again.outcomes] == ["skipped"]
    assert [o.status for o in fixed.outcomes] == ["done"]  # not "skipped (already valid)"
    assert query(store, "select mpp_x from slides")["mpp_x"].to_list() == [0.25]
    # half the µm per pixel: about a quarter of the area (the mask, read at 8 µm/px, sees
    # the drawn texture at another scale, so not exactly)
    assert 0.15 < query(store, area_sql)["value"][0] / first_area < 0.4


def test_a_grid_that_does_not_fit_the_tissue_model_is_refused_before_any_slide(tmp_path):
    store = tmp_path / "s.duckdb"
    with pytest.raises(ConfigError, match="does not fit the tissue model"):
        build_features([tmp_path], store, TILES_ONLY.with_(tile_size_px=256),
                       show_progress=False)
    assert not store.exists()


def test_the_same_slide_under_two_names_is_refused_naming_both(tmp_path, slide_without_mpp):
    """Same bytes, two file names, two patients: refused before any work, naming both files and
    both pseudonyms (it was "done 2" with one patient silently gone)."""
    import shutil

    from immunodig.errors import ValidationError

    folder = tmp_path / "slides"
    folder.mkdir()
    shutil.copy(slide_without_mpp, folder / "a.tiff")
    shutil.copy(slide_without_mpp, folder / "copy_of_a.tiff")
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,patient_id\na.tiff,P001\ncopy_of_a.tiff,P002\n")
    store = tmp_path / "s.duckdb"
    with pytest.raises(ValidationError) as info:
        build_features([folder], store, TILES_ONLY.with_(mpp_override=0.5), manifest=manifest,
                       workers=2, show_progress=False)
    message = str(info.value)
    assert "a.tiff (patient P001)" in message and "copy_of_a.tiff (patient P002)" in message
    assert not store.exists()


def test_a_failing_run_keeps_the_earlier_valid_result(tmp_path, slide_without_mpp, monkeypatch):
    """A later run (another config) that fails on a slide leaves the earlier run's folder and
    its stored features current; the failure is recorded for the new run."""
    from immunodig import slide_folder as sf
    from immunodig.pipeline import slide_job

    store, work = tmp_path / "s.duckdb", tmp_path / "work"
    cfg = TILES_ONLY.with_(mpp_override=0.5)
    first = build_features([slide_without_mpp], store, cfg, work_dir=work, show_progress=False,
                           executor="debug")
    folder = Path(first.outcomes[0].folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash in the middle of the slide")

    monkeypatch.setattr(slide_job, "_classify", broken)
    second = build_features([slide_without_mpp], store, cfg.with_(margin_um=250.0), work_dir=work,
                            show_progress=False, executor="debug")
    assert [o.status for o in second.outcomes] == ["failed"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sf.is_complete(folder, first.run_id)
    assert not any((work / ".partial").iterdir())
    current = query(store, "select distinct run_id from slide_features_current")["run_id"]
    assert current.to_list() == [first.run_id]
    statuses = dict(query(store, "select run_id, status from slide_status").iter_rows())
    assert statuses == {first.run_id: "done", second.run_id: "failed"}
