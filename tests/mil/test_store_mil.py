"""MIL on a built store: bags from slide_embeddings, runs recorded like tabular runs, attention
per tile, the paired comparison with the tabular feature sets, and refused stale input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from immunodig.errors import ConfigError, SlideArtefactError
from immunodig.store import query

pytest.importorskip("torch")
FAST = {"n_splits": 2, "n_repeats": 1, "n_boot": 50, "epochs": 3, "hidden": 8}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Ten generated patients (1-3 H&E slides each), built with --embeddings, clinical imported."""
    from immunodig.clinical import import_clinical
    from immunodig.config import BuildConfig
    from immunodig.pipeline.build import build_features
    from immunodig.synthetic import make_cohort

    root = tmp_path_factory.mktemp("mil_store")
    cohort = make_cohort(root / "cohort", n_patients=10, seed=3, slide_mm=0.4, cd3_fraction=0.0)
    path = root / "s.duckdb"
    summary = build_features([cohort.slides_dir], path, BuildConfig(nuclei_backend=None, embeddings=True),
                             manifest=cohort.manifest, show_progress=False)
    assert summary.ok, summary.failed
    import_clinical(cohort.clinical_csv, path)
    return path


@pytest.fixture()
def copy(store, tmp_path) -> Path:
    """A private copy of the store (its slide folders stay shared, read-only)."""
    target = tmp_path / "s.duckdb"
    shutil.copy(store, target)
    return target


@pytest.mark.usefixtures("torch_one_thread")
def test_bags_pool_every_he_slide_of_a_patient(store):
    from immunodig.mil.bags import store_bags

    bags = store_bags(store)
    per_slide = query(store, "select patient_id, sum(n_tiles) as n from slide_embeddings_current "
                             "group by patient_id order by patient_id")
    assert bags.patient_ids.tolist() == per_slide["patient_id"].to_list()
    assert [len(b) for b in bags.bags] == per_slide["n"].to_list()
    assert all(len(t) == len(b) for t, b in zip(bags.tiles, bags.bags))
    assert bags.bags[0].dtype == np.float32


@pytest.mark.usefixtures("torch_one_thread")
def test_evaluate_records_run_oof_and_attention(copy):
    from immunodig.mil.store_evaluation import evaluate_store_mil

    summary = evaluate_store_mil(copy, "pfs", "abmil", **FAST)
    run = summary["model_run_id"]
    assert summary["feature_set"].startswith("embeddings[") and 0 <= summary["c_index"] <= 1
    row = query(copy, "select model, task, n_patients from model_runs where model_run_id = $r", {"r": run})
    assert row.row(0) == ("abmil", "survival", summary["n"])
    oof = query(copy, "select count(*) from oof_predictions where model_run_id = $r", {"r": run}).item()
    assert oof == summary["n"]
    att = query(copy, "select patient_id, sum(attention) as s, count(*) as n from mil_attention "
                      "where model_run_id = $r group by patient_id", {"r": run})
    assert att.height == summary["n"]
    np.testing.assert_allclose(att["s"].to_numpy(), 1.0, atol=1e-5)
    tiles = query(copy, "select sum(n_tiles) from slide_embeddings_current").item()
    assert att["n"].sum() == tiles
    again = evaluate_store_mil(copy, "pfs", "abmil", **FAST)
    assert again["model_run_id"] == run and again["c_index"] == summary["c_index"]
    assert query(copy, "select count(*) from mil_attention").item() == tiles


@pytest.mark.usefixtures("torch_one_thread")
def test_cli_evaluate_and_compare_put_mil_beside_the_tabular_sets(copy, tmp_path):
    from immunodig.cli.app import app

    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--store", str(copy), "--model", "meanpool", "--outcome", "pfs",
                              "--folds", "2", "--repeats", "1", "--n-boot", "50", "--clinical-fusion",
                              "--mil-param", "epochs=2"])
    assert res.exit_code == 0, res.output
    assert "meanpool: n=10 patients" in res.output
    fs = query(copy, "select feature_set from model_runs where model = 'meanpool'").item()
    assert fs.endswith("+clinical")
    res = runner.invoke(app, ["compare", "--store", str(copy), "--model", "cox", "--outcome", "pfs",
                              "--sets", "clinical,morphology", "--mil", "abmil", "--folds", "2",
                              "--inner-folds", "2", "--repeats", "1", "--n-boot", "50",
                              "--mil-param", "epochs=2", "--json", str(tmp_path / "c.json")])
    assert res.exit_code == 0, res.output
    assert "abmil: c_index" in res.output and "abmil - clinical" in res.output


def test_changed_embedding_file_and_ambiguous_encoder_are_refused(copy):
    from immunodig.mil.bags import store_bags

    row = query(copy, "select * from slide_embeddings limit 1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("immunodig.mil.bags.file_sha256", lambda p: "0" * 64)
        with pytest.raises(SlideArtefactError, match="changed since it was ingested"):
            store_bags(copy)
    from immunodig.store import Store

    with Store.open(copy) as s, s.transaction() as con:
        con.execute("insert into slide_embeddings select slide_id, run_id, 'other', 'f' || encoder_sha256, dim, "
                    "n_tiles, file, sha256 from slide_embeddings where slide_id = $s", {"s": row["slide_id"][0]})
    with pytest.raises(ConfigError, match="embeddings of 2 encoders"):
        store_bags(copy)
    assert len(store_bags(copy, encoder_sha256="f").bags) == 1


@pytest.mark.usefixtures("torch_one_thread")
def test_attention_overlay_and_report_section(store, copy, tmp_path):
    from immunodig.cli.app import app
    from immunodig.mil.store_evaluation import evaluate_store_mil
    from immunodig.report.attention import attention_by_class, attention_section
    from immunodig.slide_folder import default_work_dir

    run = evaluate_store_mil(copy, "pfs", "abmil", **FAST)["model_run_id"]
    by_class = attention_by_class(copy, run)
    for _, group in by_class.group_by("high"):
        assert group["share_of_attention"].sum() == pytest.approx(1.0)
    sec = attention_section(copy)
    assert sec.tables and sec.figures and run in sec.intro
    from immunodig.report import build_report

    info = build_report(copy, tmp_path / "r.html", work_dir=default_work_dir(store), max_gallery=1)
    assert "attention" not in info.unavailable and 'id="attention"' in (tmp_path / "r.html").read_text()
    slide = query(copy, "select slide_id from mil_attention limit 1").item()

    common = ["--store", str(copy), "--out-dir", str(tmp_path), "--work-dir", str(default_work_dir(store))]
    res = CliRunner().invoke(app, ["show", slide, *common, "--attention", "latest"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "attention.png").stat().st_size > 1000
    res = CliRunner().invoke(app, ["show", slide, *common, "--attention", "m_unknown"])
    assert "attention: not available" in res.output
    out = tmp_path / "a.geojson"
    res = CliRunner().invoke(app, ["export-geojson", slide, "--store", str(copy), "--out", str(out), "--work-dir",
                                   str(default_work_dir(store)), "--attention", run, "--no-nuclei"])
    assert res.exit_code == 0, res.output
    import json

    tiles = [f for f in json.loads(out.read_text())["features"] if f["properties"]["objectType"] == "tile"]
    weights = [f["properties"]["measurements"].get("MIL attention") for f in tiles]
    expected = query(copy, "select sum(attention) from mil_attention where slide_id = $s and model_run_id = $r",
                     {"s": slide, "r": run}).item()
    assert sum(w for w in weights if w is not None) == pytest.approx(expected)


@pytest.mark.usefixtures("torch_one_thread")
def test_attention_tiles_find_slides_by_a_path_relative_to_the_store(copy):
    """``--store-paths relative``: the report's most attended tiles are read from the slide files
    a relative ``slides.path`` names, resolved against the store's folder (not the working one);
    with no path stored (``none``) a tile has no image and the figure says so."""
    import os

    from immunodig.mil.store_evaluation import evaluate_store_mil
    from immunodig.report.attention import _tile_figure, _tile_image, top_tiles
    from immunodig.store import Store

    run = evaluate_store_mil(copy, "pfs", "abmil", **FAST)["model_run_id"]
    with Store.open(copy) as s, s.transaction() as con:
        for slide_id, path in con.execute("select slide_id, path from slides").fetchall():
            con.execute("update slides set path = $p where slide_id = $s",
                        {"p": os.path.relpath(path, copy.parent), "s": slide_id})
    tops = top_tiles(copy, run)
    assert tops.height and all(Path(p).is_absolute() and Path(p).is_file() for p in tops["path"])
    row = tops.row(0, named=True)
    assert _tile_image(row["path"], row["x_um"], row["y_um"], row["tile_um"]) is not None
    with Store.open(copy) as s, s.transaction() as con:
        con.execute("update slides set path = null")
    tops = top_tiles(copy, run)
    assert tops["path"].null_count() == tops.height
    fig = _tile_figure(tops.head(2), "no files")
    assert "slide file\nnot available" in [t.get_text() for ax in fig.axes for t in ax.texts]
