"""validate-ihc through the CLI on a generated store with H&E and CD3 slides (read-only query path)."""

import json

import pytest
from typer.testing import CliRunner

from immunodig.cli.app import app
from immunodig.errors import StoreError

runner = CliRunner()


@pytest.fixture(scope="module")
def ihc_store(tmp_path_factory):
    """3 generated patients, one H&E and one CD3 slide each (0.6 mm), built with the rule classifier (~1 min)."""
    d = tmp_path_factory.mktemp("ihc")
    res = runner.invoke(app, ["synth-cohort", "--out", str(d / "coh"), "--patients", "3", "--seed", "1",
                              "--slide-mm", "0.6", "--cd3-fraction", "1.0"])
    assert res.exit_code == 0, res.output
    lines = (d / "coh" / "slides.csv").read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0].endswith(("_HE1.tiff", "_CD3.tiff"))]
    (d / "slides.csv").write_text("\n".join(keep) + "\n")
    res = runner.invoke(app, ["build-features", str(d / "coh" / "slides"), "--manifest", str(d / "slides.csv"),
                              "--store", str(d / "s.duckdb"), "--cell-classifier", "rule", "--quiet"])
    assert res.exit_code == 0, res.output
    return d / "s.duckdb"


def test_validate_ihc_on_an_empty_store(tmp_path):
    """Fast: the read-only query path on a store without slides (the old code crashed on ``.pl()``)."""
    from immunodig.store import Store

    with Store.open(tmp_path / "e.duckdb"):
        pass
    res = runner.invoke(app, ["validate-ihc", "--store", str(tmp_path / "e.duckdb"),
                              "--json", str(tmp_path / "v.json")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["n_patients"] == 0 and data["pairs"] == [] and data["spearman_rho"] is None
    res = runner.invoke(app, ["validate-ihc", "--store", str(tmp_path / "absent.duckdb")])
    assert isinstance(res.exception, StoreError) and "store not found" in str(res.exception)


@pytest.mark.slow
def test_validate_ihc_cli(ihc_store, tmp_path):
    out = tmp_path / "v.json"
    res = runner.invoke(app, ["validate-ihc", "--store", str(ihc_store), "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["n_patients"] == 3 and "3 patients with both" in res.output
    assert [p["patient_id"] for p in data["pairs"]] == ["P0001", "P0002", "P0003"]
    for p in data["pairs"]:
        assert p["til_density_tumour_region_per_mm2"] > 0 and p["cd3_density_tumour_region_per_mm2"] > 0
    assert -1.0 <= data["spearman_rho"] <= 1.0


@pytest.mark.slow
def test_validate_ihc_unknown_feature(ihc_store, tmp_path):
    res = runner.invoke(app, ["validate-ihc", "--store", str(ihc_store),
                              "--ihc-feature", "cd8_density_tumour_region_per_mm2",
                              "--json", str(tmp_path / "v.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "v.json").read_text())["n_patients"] == 0
