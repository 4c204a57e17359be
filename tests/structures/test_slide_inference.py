"""Whole-slide structure inference (blocks, seams), features, and the QuPath export round trip."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.structures.inference import StructureSegmenter
from immunodig.structures.slide_inference import STRUCTURE_COLUMNS, segment_slide_structures
from tests.structures.helpers import write_darkness_model

MPP = 0.5


@pytest.fixture()
def darkness_model(tmp_path):
    return write_darkness_model(tmp_path / "dark.pt", MPP)


@pytest.fixture()
def slide_path(tmp_path):
    from tests.slides.conftest import write_pyramid

    img = np.full((512, 512, 3), 230, np.uint8)
    img[40:100, 40:120] = (60, 20, 90)      # 60 x 80 px, inside block (0, 0)
    img[200:300, 150:350] = (60, 20, 90)    # 100 x 200 px, across the block seam at x = 256
    path = tmp_path / "slide" / "s.tiff"
    path.parent.mkdir()
    write_pyramid(path, img, MPP, levels=2)
    return path


def test_structures_across_block_seams_are_one_polygon(slide_path, darkness_model):
    from immunodig.slides import Slide

    with Slide(slide_path) as slide:
        table = segment_slide_structures(slide, StructureSegmenter(darkness_model), block_px=128)
    assert table.columns == list(STRUCTURE_COLUMNS)
    assert table["class"].to_list() == ["gland", "gland"]
    np.testing.assert_allclose(table["area_um2"].to_numpy(), [60 * 80 * MPP ** 2, 100 * 200 * MPP ** 2], rtol=0.03)
    np.testing.assert_allclose(table["x_px"].to_numpy(), [80, 250], atol=1.5)
    np.testing.assert_allclose(table["perimeter_um"].to_numpy()[1], 600 * MPP, rtol=0.03)
    assert (table["probability"] > 0.9).all()


def test_export_reads_back_as_training_data(slide_path, darkness_model):
    from immunodig.report.geojson import structure_features, structure_roi_feature, write_geojson
    from immunodig.slides import Slide
    from immunodig.structures.dataset import load_annotated_folder

    with Slide(slide_path) as slide:
        table = segment_slide_structures(slide, StructureSegmenter(darkness_model), block_px=128)
    tissue = np.zeros((64, 64), bool)  # mask at 4 µm/px: a tissue square over both structures
    tissue[2:40, 2:46] = True
    roi = structure_roi_feature(tissue, 4.0, MPP)
    write_geojson(iter([roi, *structure_features(table)]), slide_path.with_suffix(".geojson"))
    (region,), classes = load_annotated_folder(slide_path.parent, mpp=MPP)
    assert classes == ["gland"]
    assert (region.labels == 1).sum() == 60 * 80 + 100 * 200
    assert region.origin_px == (16.0, 16.0)
    assert region.labels[250 - 16, 200 - 16] == 1 and region.labels[10, 10] == 0
    assert len(np.unique(region.instances)) - 1 == 2


def test_structure_features_count_density_and_placement():
    import polars as pl

    from immunodig.features.margin import compartments
    from immunodig.features.segmented_structures import segmented_structure_features, structure_key
    from immunodig.features.tilemap import TileMap
    from immunodig.vocab import KATHER_CLASSES

    assert structure_key("Tertiary lymphoid structure") == "tls" and structure_key("stroma") is None
    code = np.full((3, 6), KATHER_CLASSES.index("STR"), np.int8)
    code[:, :3] = KATHER_CLASSES.index("TUM")
    tmap = TileMap(100.0, code, np.ones((3, 6)), np.zeros((3, 6)), 0, 0)
    comp = compartments(tmap, margin_um=150.0)
    table = pl.DataFrame({"class": ["TLS", "TLS", "TLS", "gland"], "x_um": [50.0, 350.0, 550.0, 10.0],
                          "y_um": [50.0, 150.0, 250.0, 10.0], "area_um2": [1e4, 2e4, 3e4, 5e3]})
    v = segmented_structure_features(table, tmap, comp, tissue_area_mm2=0.18)
    assert v["seg_tls_count"] == 3 and v["seg_tls_intratumoural_count"] == 1
    assert v["seg_tls_peritumoural_count"] == 1  # the tile next to the edge; 550 µm is beyond the margin
    assert v["seg_tls_density_tumour_per_mm2"] == pytest.approx(2 / 0.09)
    assert v["seg_tls_area_fraction"] == pytest.approx(0.06 / 0.18)
    assert v["seg_gland_count"] == 1 and v["seg_bud_count"] == 0 and np.isnan(v["seg_bud_area_mean_mm2"])
