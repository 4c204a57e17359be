"""Issue #12 B: annotated CRC images tiled into whole slides, scored through build-features."""

import importlib

import numpy as np
import polars as pl
import pytest

from immunodig.config import BuildConfig
from immunodig.nuclei.datasets import read_crchistophenotypes
from immunodig.nuclei.mosaic_eval import score_slide_nuclei, write_mosaic_slide


def _build_features():
    for name in ("immunodig.pipeline.build", "immunodig.features.build"):
        try:
            return importlib.import_module(name).build_features
        except ImportError:
            continue
    raise ImportError("no build_features")


def _run(tmp_path, images, quality, dust):
    (tmp_path / "slides").mkdir()
    mosaic = write_mosaic_slide(images, tmp_path / "slides" / "mosaic.tiff", columns=3, quality=quality, dust_specks=dust)
    summary = _build_features()([tmp_path / "slides"], tmp_path / "s.duckdb", BuildConfig(nuclei_backend="classical"),
                                executor="debug", show_progress=False)
    assert summary.count("done") == 1
    folder = next((tmp_path / "s_slides").iterdir())
    return score_slide_nuclei(pl.read_parquet(folder / "nuclei.parquet"), mosaic, pl.read_parquet(folder / "tiles.parquet"))


def test_mosaic_scoring_counts_every_annotated_centre(tmp_path, crc_dir):
    """The scorer itself: the annotations as predictions give recall 1 and ratio 1."""
    images = read_crchistophenotypes(crc_dir)[:2]
    mosaic = write_mosaic_slide(images, tmp_path / "m.tiff", columns=2, quality=90)
    xy, lab = mosaic.points()
    names = np.array(["epithelial", "lymphocyte", "fibroblast", "other"])[np.where(lab < 0, 3, lab)]
    res = score_slide_nuclei({"x_um": xy[:, 0], "y_um": xy[:, 1], "cell_class": names}, mosaic)
    assert res["recall"] == 1.0 and res["count_ratio"] == 1.0 and res["inflammatory"]["f1"] == 1.0


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known gap (docs/nuclei.md): inflammatory F1 through the slide path ~0.05 below eval-lymphocytes")
@pytest.mark.parametrize("quality,dust", [(30, 0), (90, 0), (90, 20)])
def test_build_path_matches_eval_lymphocytes(tmp_path, crc_dir, quality, dust):
    from immunodig.nuclei.cell_classifier import load_cell_classifier
    from immunodig.nuclei.lymphocyte_eval import evaluate_lymphocytes
    from immunodig.nuclei.segmenter import get_segmenter

    images = read_crchistophenotypes(crc_dir)[::5][:9]
    ev = evaluate_lymphocytes(images, load_cell_classifier(), get_segmenter())
    res = _run(tmp_path, images, quality, dust)
    assert res["recall"] >= 0.85 and 0.85 <= res["count_ratio"] <= 1.2
    assert res["inflammatory"]["f1"] >= 0.72 and abs(res["inflammatory"]["f1"] - ev["f1"]) <= 0.03
