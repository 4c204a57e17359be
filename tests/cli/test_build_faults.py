"""build-features on bad input: one clear line, exit 2, before any run is recorded or any slide
is opened (issue #13).

The slide is a file of random bytes: a build that got as far as opening it would record a run
(the store file appears) and a ``corrupt`` failure, so "no store file" proves the refusal came
first. """

from __future__ import annotations

import os

import pytest

from immunodig.compute import check_executor
from immunodig.errors import ConfigError


@pytest.fixture
def slide(tmp_path):
    path = tmp_path / "slides" / "fake.svs"
    path.parent.mkdir()
    path.write_bytes(os.urandom(4096))
    return path


def _refused(res, needle: str) -> None:
    assert res.code == 2, res.out + res.err
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.err
    assert "Traceback" not in res.err


def test_unknown_nuclei_backend_is_refused_before_anything(cli, slide, tmp_path):
    store = tmp_path / "s.duckdb"
    _refused(cli("build-features", slide, "--store", store, "--nuclei-backend", "nope", "--quiet"),
             "unknown nuclei backend")
    assert not store.exists()


def test_unknown_executor_is_refused_before_anything(cli, slide, tmp_path):
    store = tmp_path / "s.duckdb"
    _refused(cli("build-features", slide, "--store", store, "--executor", "pbs", "--quiet"),
             "unknown executor")
    assert not store.exists()


def test_check_executor_names_the_missing_slurm_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no sbatch, no srun
    with pytest.raises(ConfigError, match="sbatch and srun not found"):
        check_executor("slurm")
    check_executor("local")
    fake = tmp_path / "sbatch"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="srun not found"):
        check_executor("slurm")


def test_slurm_without_sbatch_is_one_clear_line(cli, slide, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    _refused(cli("build-features", slide, "--store", tmp_path / "s.duckdb", "--executor", "slurm",
                 "--quiet"), "--executor slurm needs the Slurm commands")


def test_slurm_without_sbatch_records_no_run(cli, slide, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    store = tmp_path / "s.duckdb"
    cli("build-features", slide, "--store", store, "--executor", "slurm", "--quiet")
    assert not store.exists()


def test_missing_input_path_is_refused_before_anything(cli, slide, tmp_path):
    store = tmp_path / "s.duckdb"
    _refused(cli("build-features", slide, tmp_path / "absent.svs", "--store", store, "--quiet"),
             "absent.svs")
    assert not store.exists()


def test_store_folder_that_cannot_be_created_is_one_clear_line(cli, slide, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    _refused(cli("build-features", slide, "--store", blocker / "s.duckdb", "--quiet"), "a_file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_non_writable_store_folder_is_one_clear_line(cli, slide, tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        _refused(cli("build-features", slide, "--store", folder / "s.duckdb", "--quiet"),
                 "not writable")
        assert not any(folder.iterdir())
    finally:
        folder.chmod(0o755)
