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


def _run(tmp_path, images, quality, dust, columns=3):
    (tmp_path / "slides").mkdir()
    mosaic = write_mosaic_slide(images, tmp_path / "slides" / "mosaic.tiff", columns=columns, quality=quality,
                                dust_specks=dust)
    summary = _build_features()([tmp_path / "slides"], tmp_path / "s.duckdb", BuildConfig(nuclei_backend="classical"),
                                executor="debug", show_progress=False)
    assert summary.count("done") == 1
    folder = next((tmp_path / "s_slides").glob("s_*"))
    return score_slide_nuclei(pl.read_parquet(folder / "nuclei.parquet"), mosaic), mosaic


def test_mosaic_scoring_counts_every_annotated_centre(tmp_path, crc_dir):
    """The scorer itself: the annotations as predictions give recall 1 and ratio 1."""
    images = read_crchistophenotypes(crc_dir)[:2]
    mosaic = write_mosaic_slide(images, tmp_path / "m.tiff", columns=2, quality=90)
    xy, lab = mosaic.points()
    names = np.array(["epithelial", "lymphocyte", "fibroblast", "other"])[np.where(lab < 0, 3, lab)]
    res = score_slide_nuclei({"x_um": xy[:, 0], "y_um": xy[:, 1], "cell_class": names}, mosaic)
    assert res["recall"] == 1.0 and res["count_ratio"] == 1.0 and res["inflammatory"]["f1"] == 1.0


def _decoded(images, mosaic, path):
    """The mosaic's images as the slide file holds them (after JPEG): what build-features reads."""
    from dataclasses import replace

    from immunodig.slides.reader import Slide

    h, w = images[0].rgb.shape[:2]
    with Slide(path) as slide:
        return [replace(im, rgb=slide.read(x, y, (w, h), slide.mpp)) for im, (x, y) in zip(images, mosaic.origins_px)]


def _check(tmp_path, images, quality, dust, columns=3):
    """Slide path vs eval-lymphocytes on the original images and on the decoded pixels."""
    from immunodig.nuclei.cell_classifier import load_cell_classifier
    from immunodig.nuclei.lymphocyte_eval import evaluate_lymphocytes
    from immunodig.nuclei.segmenter import get_segmenter

    clf, seg = load_cell_classifier(), get_segmenter()
    res, mosaic = _run(tmp_path, images, quality, dust, columns)
    ev = evaluate_lymphocytes(images, clf, seg)["f1"]
    ev_decoded = evaluate_lymphocytes(_decoded(images, mosaic, tmp_path / "slides" / "mosaic.tiff"), clf, seg)["f1"]
    f1 = res["inflammatory"]["f1"]
    print(f"q{quality} dust {dust}: recall {res['recall']:.3f} ratio {res['count_ratio']:.3f} F1 {f1:.3f} "
          f"eval {ev:.3f} eval(decoded) {ev_decoded:.3f}")
    assert res["recall"] >= 0.85
    # one path: the slide scores what eval-lymphocytes scores on the same pixels (dust specks,
    # the tissue mask and the neighbours across image borders are the only differences)
    assert abs(f1 - ev_decoded) <= 0.03
    return res, f1, ev


def test_build_path_matches_eval_lymphocytes_fast(tmp_path, crc_dir):
    """Default suite (~30 s of CPU): 1 x 2 images, JPEG Q90, the shipped classifier."""
    images = read_crchistophenotypes(crc_dir)[::5][:2]
    _, f1, ev = _check(tmp_path, images, 90, 0, columns=2)
    assert abs(f1 - ev) <= 0.03


@pytest.mark.slow
@pytest.mark.parametrize("quality,dust", [(30, 0), (90, 0), (90, 20)])
def test_build_path_matches_eval_lymphocytes(tmp_path, crc_dir, quality, dust):
    """Issue #12: 3 x 3 images; the slide path within 0.03 of eval-lymphocytes on the original images.

    Known gap at JPEG Q30 (checked strictly: it fails once the gap closes): the classifier,
    in-sample on these images, loses ~0.05 F1 on Q30 pixels; the slide path itself matches
    eval-lymphocytes on the decoded pixels (asserted in ``_check``).
    """
    images = read_crchistophenotypes(crc_dir)[::5][:9]
    res, f1, ev = _check(tmp_path, images, quality, dust)
    assert 0.85 <= res["count_ratio"] <= 1.2 and f1 >= 0.72
    if quality == 30:
        assert abs(f1 - ev) > 0.03, "the Q30 gap is closed: make this a plain assertion"
        pytest.xfail("JPEG Q30: F1 more than 0.03 below eval-lymphocytes on the original images")
    assert abs(f1 - ev) <= 0.03
