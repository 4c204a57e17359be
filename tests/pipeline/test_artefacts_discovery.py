"""Per-slide folder validity, atomic writes, slide discovery and the slide manifest."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from immunodig import slide_folder as sf
from immunodig.config import BuildConfig
from immunodig.errors import ValidationError
from immunodig.io import atomic_path, write_json_atomic, write_parquet_atomic
from immunodig.pipeline.discovery import discover_slides, make_jobs, read_slide_manifest
from immunodig.provenance import file_sha256, run_key

REPO = Path(__file__).resolve().parents[2]


def _complete_folder(folder: Path, run_id: str) -> None:
    write_parquet_atomic(folder / sf.TILES_PARQUET, pl.DataFrame({"a": list(range(1000))}))
    write_json_atomic(folder / sf.SLIDE_JSON, {"slide_id": folder.name})
    write_json_atomic(folder / sf.MANIFEST_JSON, {
        "run_id": run_id, "files": sf.hash_files(folder, [sf.TILES_PARQUET, sf.SLIDE_JSON])})


def test_complete_folder_is_valid_only_for_its_run(tmp_path):
    folder = tmp_path / "s_0123"
    _complete_folder(folder, "r_1")
    assert sf.is_complete(folder, "r_1")
    assert not sf.is_complete(folder, "r_2")


def test_truncated_file_is_detected(tmp_path):
    folder = tmp_path / "s_0123"
    _complete_folder(folder, "r_1")
    data = (folder / sf.TILES_PARQUET).read_bytes()
    (folder / sf.TILES_PARQUET).write_bytes(data[: len(data) // 2])
    assert not sf.is_complete(folder, "r_1")


def test_missing_manifest_means_not_done(tmp_path):
    folder = tmp_path / "s_0123"
    _complete_folder(folder, "r_1")
    (folder / sf.MANIFEST_JSON).unlink()
    assert not sf.is_complete(folder, "r_1")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_run_key_depends_on_config_and_model_content():
    a = run_key("cfg1", {"tissue": "h1"})
    assert a == run_key("cfg1", {"tissue": "h1"}) and a.startswith("r_")
    assert a != run_key("cfg2", {"tissue": "h1"})
    assert a != run_key("cfg1", {"tissue": "h2"})


def test_config_hash_ignores_model_paths_not_values():
    from immunodig.config import BuildConfig

    assert BuildConfig(tissue_model="/a/m.pt").config_hash() == BuildConfig(tissue_model="/b/m.pt").config_hash()
    assert BuildConfig(tile_size_px=256).config_hash() != BuildConfig().config_hash()


def test_file_sha256(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_discovery_recurses_and_keeps_explicit_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "s1.svs").write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "s2.tiff").write_bytes(b"x")
    (tmp_path / "dcm").mkdir()
    for i in range(3):
        (tmp_path / "dcm" / f"{i}.dcm").write_bytes(b"x")
    explicit = tmp_path / "flat.jpg"
    explicit.write_bytes(b"x")
    found = discover_slides([tmp_path, explicit])
    names = sorted(p.name for p in found)
    assert names == ["0.dcm", "flat.jpg", "s1.svs", "s2.tiff"]


def test_manifest_links_patients_and_validates(tmp_path):
    good = tmp_path / "m.csv"
    good.write_text("file,patient_id,stain\nslides/a.tiff,P1 ,HE\nb.tiff,P1,cd3\n")
    m = read_slide_manifest(good)
    assert [(r.file, r.patient_id, r.stain) for r in m] == [
        (("slides", "a.tiff"), "P1", "HE"), (("b.tiff",), "P1", "CD3")]
    jobs = make_jobs([tmp_path / "slides" / "a.tiff", tmp_path / "b.tiff"], m)
    assert [(j.patient_id, j.stain) for j in jobs] == [("P1", "HE"), ("P1", "CD3")]
    bad = tmp_path / "bad.csv"
    bad.write_text("file,patient_id,stain\na.tiff,P1,HE\na.tiff,P2,XYZ\nc.tiff,John Smith,HE\n"
                   "d.tiff,12.03.1961,HE\n")
    with pytest.raises(ValidationError) as info:
        read_slide_manifest(bad)
    problems = {(p["row"], p["column"]) for p in info.value.problems}
    assert problems == {(2, "file"), (2, "stain"), (3, "patient_id"), (4, "patient_id")}
    assert "P2" not in str(info.value) and "Smith" not in str(info.value)
    assert "1961" not in str(info.value)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,patient\nx,y\n")
    with pytest.raises(ValidationError, match="patient_id"):
        read_slide_manifest(missing)


def test_manifest_is_checked_whole_against_the_slides(tmp_path):
    """A slide without a row, a row without a slide, and an ambiguous base name are refused
    together, naming rows and file names; a relative path resolves the ambiguity."""
    m = tmp_path / "m.csv"
    m.write_text("file,patient_id\na.tiff,P1\ngone.tiff,P2\nx.tiff,P3\n")
    slides = [tmp_path / "s1" / "a.tiff", tmp_path / "c.tiff", tmp_path / "s1" / "x.tiff",
              tmp_path / "s2" / "x.tiff"]
    with pytest.raises(ValidationError) as info:
        make_jobs(slides, read_slide_manifest(m), str(m))
    checks = {(p["row"], p["check"]) for p in info.value.problems}
    assert (2, "matches no slide among the inputs") in checks
    assert (3, "matches 2 slides; give the path relative to the input folder") in checks
    assert (None, "slide c.tiff has no row") in checks
    assert str(m) in str(info.value)
    m.write_text("file,patient_id\na.tiff,P1\nc.tiff,P2\ns1/x.tiff,P3\ns2/x.tiff,P4\n")
    jobs = make_jobs(slides, read_slide_manifest(m))
    assert [j.patient_id for j in jobs] == ["P1", "P2", "P3", "P4"]


def test_raw_ids_are_pseudonymised_with_a_key(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("file,patient_id\na.tiff, 12345 \n")
    rows = read_slide_manifest(m, pseudonym_key=b"k" * 32)
    from immunodig.clinical.pseudonym import pseudonymise

    assert rows[0].patient_id == pseudonymise(["12345"], b"k" * 32)[0] != "12345"


def test_atomic_files_follow_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "x.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644


def test_bad_build_input_leaves_no_store(tmp_path):
    from immunodig.errors import ConfigError
    from immunodig.pipeline.build import build_features

    store = tmp_path / "s.duckdb"
    with pytest.raises(ValidationError, match="manifest file not found"):
        build_features([tmp_path], store, manifest=tmp_path / "nope.csv", show_progress=False)
    with pytest.raises(ConfigError, match="executor"):
        build_features([tmp_path], store, executor="bogus", show_progress=False)
    assert not store.exists()


def test_nuclei_stage_is_on_by_default_and_off_only_when_asked(tmp_path):
    """TIL densities are the point: the default build segments nuclei; ``none`` turns it off."""
    import subprocess
    import sys

    from immunodig.errors import ConfigError

    assert BuildConfig().nuclei_backend == "classical"
    assert BuildConfig(nuclei_backend=None).config_hash() != BuildConfig().config_hash()
    with pytest.raises(ConfigError, match="unknown nuclei backend 'bogus'"):
        BuildConfig(nuclei_backend="bogus")
    store = tmp_path / "s.duckdb"
    out = subprocess.run([sys.executable, "cli.py", "build-features", str(tmp_path), "--store",
                          str(store), "--nuclei-backend", "bogus"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "unknown nuclei backend 'bogus'" in out.stderr
    assert not store.exists()
