"""Rasterisation against hand-made masks, and the annotated-folder reader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from immunodig.errors import AnnotationOutsideImageError, DatasetError
from immunodig.structures.dataset import list_annotated_files, load_annotated_folder
from immunodig.structures.geojson import read_geojson
from immunodig.structures.rasterise import IGNORE_LABEL, Grid, rasterise
from tests.structures.helpers import feature, square, write_collection


def _anns(tmp_path, feats):
    return read_geojson(write_collection(tmp_path / "a.geojson", feats))


def test_square_with_hole_covers_the_expected_pixels(tmp_path):
    anns = _anns(tmp_path, [feature([square(1, 1, 7, 6), square(3, 2, 5, 4)], "gland")])
    out = rasterise(anns, Grid((0, 0), 1.0, (8, 9)), ["gland"])
    expected = np.zeros((8, 9), np.uint8)
    expected[1:6, 1:7] = 1  # pixels whose centres (c + 0.5) lie in [1, 7) x [1, 6)
    expected[2:4, 3:5] = 0  # the hole
    np.testing.assert_array_equal(out.labels, expected)
    assert set(np.unique(out.instances)) == {0, 1}


def test_roi_limits_what_counts_and_small_structures_win(tmp_path):
    anns = _anns(tmp_path, [
        feature([square(0, 0, 4, 4)], "gland"),           # partly outside the ROI
        feature([square(2, 2, 8, 8)], "tumour"),          # large
        feature([square(4, 4, 6, 6)], "gland"),           # inside the tumour: drawn over it
        feature([square(2, 0, 8, 8)], "Region*"),
        feature([square(7, 7, 8, 8)], "Ignore*"),
    ])
    out = rasterise(anns, Grid((0, 0), 1.0, (10, 10)), ["gland", "tumour"])
    exp = np.full((10, 10), IGNORE_LABEL, np.uint8)
    exp[0:8, 2:8] = 0
    exp[2:8, 2:8] = 2
    exp[0:4, 2:4] = 1
    exp[4:6, 4:6] = 1
    exp[7, 7] = IGNORE_LABEL
    np.testing.assert_array_equal(out.labels, exp)
    assert out.instances[5, 5] != out.instances[0, 2] and out.instances[5, 5] > 0
    assert out.instances[9, 9] == 0


def test_multipolygon_parts_are_separate_instances_and_scale_applies(tmp_path):
    anns = _anns(tmp_path, [feature([[square(0, 0, 4, 4)], [square(8, 8, 12, 12)]], "TLS", kind="MultiPolygon")])
    out = rasterise(anns, Grid((0, 0), 0.5, (6, 6)), ["TLS"])  # 2 level-0 px per output px
    exp = np.zeros((6, 6), np.uint8)
    exp[0:2, 0:2] = 1
    exp[4:6, 4:6] = 1
    np.testing.assert_array_equal(out.labels, exp)
    assert out.instances[0, 0] != out.instances[5, 5]


def test_folder_reader_resamples_images_and_checks_bounds(tmp_path):
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(tmp_path / "t1.png")
    write_collection(tmp_path / "t1.geojson", [feature([square(10, 10, 30, 20)], "gland")])
    regions, classes = load_annotated_folder(tmp_path, mpp=0.5, image_mpp=0.25)
    assert classes == ["gland"]
    (r,) = regions
    assert r.rgb.shape == (20, 30, 3) and r.labels.shape == (20, 30)
    assert r.labels.sum() == 10 * 5 and r.group == "t1"
    write_collection(tmp_path / "t1.geojson", [feature([square(10, 10, 70, 20)], "gland")])
    with pytest.raises(AnnotationOutsideImageError, match="t1.geojson: feature 0 .* outside the 60 x 40 px"):
        load_annotated_folder(tmp_path, mpp=0.5)


def test_folder_reader_refuses_orphan_geojson_and_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match="no .geojson"):
        list_annotated_files(tmp_path)
    write_collection(tmp_path / "lonely.geojson", [])
    with pytest.raises(DatasetError, match="lonely.geojson: no image or slide"):
        list_annotated_files(tmp_path)


def _slide(tmp_path, mpp=0.25):
    from tests.slides.conftest import write_pyramid

    img = np.full((512, 512, 3), 235, np.uint8)
    img[100:200, 300:400] = (80, 30, 120)
    path = tmp_path / "slide.tiff"
    write_pyramid(path, img, mpp, levels=2)
    return path


def test_whole_slide_regions_are_read_at_the_model_mpp(tmp_path):
    _slide(tmp_path)
    write_collection(tmp_path / "slide.geojson", [
        feature([square(256, 64, 448, 256)], "Region*"), feature([square(300, 100, 400, 200)], "gland")])
    (r,), classes = load_annotated_folder(tmp_path, mpp=0.5)
    assert r.origin_px == (256.0, 64.0) and r.rgb.shape == (96, 96, 3)
    assert (r.labels == 1).sum() == 50 * 50
    assert r.rgb[r.labels == 1].mean() < 120 < r.rgb[r.labels == 0].mean()


def test_whole_slide_needs_a_roi_and_a_consistent_mpp(tmp_path):
    from immunodig.errors import AnnotationError, MppMismatchError

    _slide(tmp_path)
    write_collection(tmp_path / "slide.geojson", [feature([square(300, 100, 400, 200)], "gland")])
    with pytest.raises(AnnotationError, match="no region-of-interest"):
        load_annotated_folder(tmp_path, mpp=0.5)
    write_collection(tmp_path / "slide.geojson", [feature([square(0, 0, 500, 500)], "ROI"),
                                                  feature([square(300, 100, 400, 200)], "gland")])
    with pytest.raises(MppMismatchError, match=r"metadata says 0.25 µm/px but --image-mpp 0.5"):
        load_annotated_folder(tmp_path, mpp=0.5, image_mpp=0.5)
    assert len(load_annotated_folder(tmp_path, mpp=0.5, image_mpp=0.25)[0]) == 1
