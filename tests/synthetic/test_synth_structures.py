"""Structure truth of a generated slide: structures.geojson reads back as training data and
rasterises to exactly the drawn TLS and gland masks."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from immunodig.structures.dataset import load_annotated_folder
from immunodig.structures.geojson import read_geojson
from immunodig.structures.rasterise import Grid, rasterise
from immunodig.synthetic.fields import Fields
from immunodig.synthetic.structures import GLAND_CLASS, TLS_CLASS, gland_mask, gland_step, tls_mask

CLASSES = [TLS_CLASS, GLAND_CLASS]


@pytest.fixture(scope="module")
def annotations(small_slide):
    path, _ = small_slide
    return read_geojson(path.parent / "truth" / "structures.geojson", classes=CLASSES)


def test_truth_lists_every_structure_with_one_region(small_slide, annotations):
    _, truth = small_slide
    summary = json.loads((_truth_dir(small_slide) / "truth.json").read_text())["structures"]
    rois = [a for a in annotations if a.is_roi]
    assert len(rois) == 1 and rois[0].geometry.bounds == (0, 0, truth.width_px, truth.height_px)
    for cls in CLASSES:
        mine = [a for a in annotations if a.class_name == cls]
        assert len(mine) == summary[cls]["count"] > 0, cls
        area = sum(a.geometry.area for a in mine) * truth.mpp ** 2 * 1e-6
        assert area == pytest.approx(summary[cls]["area_mm2"], rel=1e-9), cls


@pytest.mark.parametrize("cls", CLASSES)
def test_geojson_rasterises_to_the_truth_masks(small_slide, annotations, cls):
    _, truth = small_slide
    factor = int(round(truth.classmap_mpp / truth.mpp))
    if cls == TLS_CLASS:
        cell, expected = factor, tls_mask(truth.classmap)
    else:
        cell = gland_step(truth.mpp)
        expected = gland_mask(truth.classmap, factor, truth.mpp, Fields(truth.seed))
    lab = rasterise([a for a in annotations if a.class_name == cls], Grid((0.0, 0.0), 1 / cell, expected.shape),
                    [cls])
    np.testing.assert_array_equal(lab.labels == 1, expected)
    n = sum(a.class_name == cls for a in annotations)
    assert len(np.unique(lab.instances[lab.instances > 0])) == n
    polygon_area = sum(a.geometry.area for a in annotations if a.class_name == cls)
    assert polygon_area == pytest.approx(expected.sum() * cell ** 2, rel=0.02)


def test_glands_hold_the_drawn_tumour_nuclei(small_slide, annotations):
    """The truth polygons sit where the renderer drew tumour epithelium."""
    from shapely import STRtree, points

    _, truth = small_slide
    nuclei = truth.nuclei_frame()
    tumour = nuclei.filter(nuclei["kind"] == "tumour")
    glands = [a.geometry for a in annotations if a.class_name == GLAND_CLASS]
    hits = STRtree(glands).query(points(tumour["x_px"].to_numpy(), tumour["y_px"].to_numpy()),
                                 predicate="within")
    assert len(tumour) > 500
    assert len(np.unique(hits[0])) / len(tumour) > 0.99


def test_truth_folder_is_training_data(small_slide, tmp_path):
    path, truth = small_slide
    os.symlink(path, tmp_path / "s.tiff")
    os.symlink(_truth_dir(small_slide) / "structures.geojson", tmp_path / "s.geojson")
    regions, classes = load_annotated_folder(tmp_path, 2.0, CLASSES)
    assert classes == CLASSES and len(regions) == 1
    summary = truth.summary()["structures"]
    px_mm2 = 2.0 ** 2 * 1e-6
    for k, cls in enumerate(CLASSES, start=1):
        assert (regions[0].labels == k).sum() * px_mm2 == pytest.approx(summary[cls]["area_mm2"], rel=0.05)
    assert not (regions[0].labels == 255).any()


def _truth_dir(small_slide):
    return small_slide[0].parent / "truth"
