"""Report CLI: slides named by id, id prefix or file name, --all, --version, in-sample notes."""

from __future__ import annotations

import hashlib

import pytest
from typer.testing import CliRunner

from immunodig.errors import SlideArtefactError
from immunodig.report.overlays import HE_OVERLAYS
from immunodig.report.slide_artefacts import resolve_slides


@pytest.fixture
def named_store(tmp_path):
    from immunodig.store import Store

    path = tmp_path / "s.duckdb"
    with Store.open(path) as st, st.transaction() as con:
        for sid, p in (("s_abc1", "/x/a.svs"), ("s_abd2", "/x/b.svs"), ("s_ffff", None)):
            con.execute("insert into slides (slide_id, path) values ($s, $p)", {"s": sid, "p": p})
    return path


def test_resolve_by_id_prefix_file_and_all(named_store):
    assert resolve_slides(named_store, "s_abd2") == ["s_abd2"]
    assert resolve_slides(named_store, "s_abc") == ["s_abc1"]
    assert resolve_slides(named_store, "b.svs") == ["s_abd2"]
    assert resolve_slides(named_store, "/x/a.svs") == ["s_abc1"]
    assert resolve_slides(named_store, None, every=True) == ["s_abc1", "s_abd2", "s_ffff"]
    with pytest.raises(SlideArtefactError, match="2 slides .* match 's_ab'"):
        resolve_slides(named_store, "s_ab")
    with pytest.raises(SlideArtefactError, match="no slide"):
        resolve_slides(named_store, "c.svs")
    with pytest.raises(SlideArtefactError, match="--all"):
        resolve_slides(named_store, None)


def test_show_and_export_all(bare_store, tmp_path):
    from immunodig.cli.app import app

    runner = CliRunner()
    res = runner.invoke(app, ["export-geojson", "--all", "--store", str(bare_store), "--out",
                              str(tmp_path / "gj"), "--no-nuclei", "--no-tiles"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "gj").glob("s_*.geojson"))) == 12
    res = runner.invoke(app, ["show", "s_000000000000000b", "--store", str(bare_store),
                              "--out-dir", str(tmp_path / "png")])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "png").glob("overlay_*.png"))) == len(HE_OVERLAYS)
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("immunodig 0.")


def test_in_sample_note(tmp_path):
    import numpy as np
    from PIL import Image

    from immunodig.cli.tissue_cmds import _in_sample_note

    rng = np.random.default_rng(0)
    files = []
    for cls in ("TUM", "STR"):
        (tmp_path / "tiles" / cls).mkdir(parents=True)
        files.append(tmp_path / "tiles" / cls / "a.png")
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(files[-1])
    digest = hashlib.sha256("".join(sorted(hashlib.sha256(p.read_bytes()).hexdigest()
                                           for p in files)).encode()).hexdigest()
    metrics = {"cv_balanced_accuracy": 0.9, "cv_scheme": "5-fold CV"}
    note = _in_sample_note(tmp_path / "tiles", {"real_files_sha256": digest}, metrics)
    assert note.startswith("IN-SAMPLE") and "0.900 (5-fold CV)" in note
    assert _in_sample_note(tmp_path / "tiles", {"real_files_sha256": "0" * 64}, metrics) is None
    assert "training folder" in _in_sample_note(tmp_path / "tiles", {"train_dir": "tiles"}, {})
