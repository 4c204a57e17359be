"""make_cohort / synth-cohort: on-disk layout, manifest, CD3 slides and the CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from immunodig.synthetic import CLINICAL_COLUMNS, make_clinical_table, make_cohort

openslide = pytest.importorskip("openslide")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_cohort(tmp_path_factory.mktemp("cohort"), 2, seed=4, slide_mm=0.6,
                       cd3_fraction=1.0)


def test_layout_and_manifest(cohort):
    m = pl.read_csv(cohort.manifest)
    assert m.columns[:3] == ["file", "patient_id", "stain"]
    assert set(m["stain"]) == {"HE", "CD3"}
    assert set(m["patient_id"]) == {"P0001", "P0002"}
    for f in m["file"]:
        assert (cohort.slides_dir / f).is_file()
        name = f.removesuffix(".tiff")
        for t in ("classmap.png", "truth.json", "nuclei.parquet"):
            assert (cohort.truth_dir / name / t).is_file()
    assert not list(cohort.root.rglob("*.part"))
    c = pl.read_csv(cohort.clinical_csv)
    assert tuple(c.columns) == CLINICAL_COLUMNS
    assert c.equals(make_clinical_table(2, seed=4)[0].with_columns(
        [pl.col(k).cast(c[k].dtype) for k in c.columns]))


def test_cd3_slide_is_brown_at_lymphocytes(cohort):
    m = pl.read_csv(cohort.manifest).filter(pl.col("stain") == "CD3")
    name = m["file"][0].removesuffix(".tiff")
    truth = json.loads((cohort.truth_dir / name / "truth.json").read_text())
    assert truth["stain"] == "CD3"
    nuc = pl.read_parquet(cohort.truth_dir / name / "nuclei.parquet")
    with openslide.OpenSlide(str(cohort.slides_dir / m["file"][0])) as s:
        assert float(s.properties["openslide.mpp-x"]) == pytest.approx(0.5)
        rgb = np.asarray(s.read_region((0, 0), 0, s.dimensions).convert("RGB")).astype(float)
    lym = nuc.filter(pl.col("cell_class") == "lymphocyte")
    oth = nuc.filter(pl.col("cell_class") != "lymphocyte")

    def ring_rgb(df):  # 4 µm from the centre: the DAB membrane rim of a T cell
        x = np.clip(np.rint(df["x_px"].to_numpy() + 8).astype(int), 0, rgb.shape[1] - 1)
        y = np.clip(np.rint(df["y_px"].to_numpy()).astype(int), 0, rgb.shape[0] - 1)
        return rgb[y, x]

    lr, orr = ring_rgb(lym), ring_rgb(oth)
    assert np.median(lr[:, 0] - lr[:, 2]) > 25  # brown: red well above blue
    assert np.median(orr[:, 0] - orr[:, 2]) < 15  # other cells: blue/grey counterstain


def test_cli(tmp_path):
    from typer.testing import CliRunner

    from immunodig.cli.app import app

    res = CliRunner().invoke(app, ["synth-cohort", "--out", str(tmp_path), "--patients", "1",
                                   "--seed", "2", "--slide-mm", "0.5", "--cd3-fraction", "0"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "slides.csv").is_file() and (tmp_path / "clinical.csv").is_file()
    assert len(list((tmp_path / "slides").glob("*.tiff"))) >= 1
