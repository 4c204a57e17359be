"""The evaluations' image-as-slide path: reads like the slide reader, nuclei as segment_slide writes them."""

import numpy as np
import polars as pl
import pytest
import tifffile

from immunodig.config import BuildConfig
from immunodig.nuclei.classical import ClassicalSegmenter
from immunodig.nuclei.image_slide import ImageSlide, full_tile_table, image_nuclei
from immunodig.nuclei.rule_classifier import RuleCellClassifier
from immunodig.nuclei.slide_nuclei import segment_slide
from immunodig.slides.reader import Slide
from tests.nuclei.conftest import draw_nuclei

CFG = BuildConfig(cell_classifier="rule")  # tiles of 112 µm, nuclei at 0.5 µm/px


@pytest.fixture
def image_tiff(tmp_path):
    """A 0.55 µm/px image (not a multiple of the tile) and the same pixels as an uncompressed TIFF."""
    rng = np.random.default_rng(4)
    centres = [tuple(p) for p in rng.uniform((10, 10), (590, 290), (40, 2))]
    rgb = draw_nuclei((300, 600), centres, radius_px=7)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, rgb, tile=(256, 256), photometric="rgb")
    return rgb, path


def test_reads_like_the_slide_reader(image_tiff):
    rgb, path = image_tiff
    with Slide(path, mpp=0.55) as slide:
        mem = ImageSlide(rgb, 0.55)
        assert mem.dimensions == slide.dimensions and mem.size_um == slide.size_um
        for args in [(0, 0, (100, 80), 0.5), (-30.3, -12, (500, 400), 0.5), (350, 250, (200, 200), 0.5),
                     (10, 20, (64, 50), 1.1), (0, 0, (600, 300), 0.55)]:
            np.testing.assert_array_equal(mem.read(*args), slide.read(*args))


def test_image_nuclei_are_what_segment_slide_writes(image_tiff, tmp_path):
    """Evaluation path == build path on the same pixels (all tiles passed, edge strip included)."""
    rgb, path = image_tiff
    seg, clf = ClassicalSegmenter(), RuleCellClassifier()
    res = image_nuclei(rgb, 0.55, CFG, seg, clf, with_labels=True)
    with Slide(path, mpp=0.55) as slide:
        segment_slide(slide, full_tile_table(slide, CFG.tile_size_um), CFG, tmp_path / "n.parquet", seg, clf)
    table = pl.read_parquet(tmp_path / "n.parquet")
    assert len(res["xy_px"]) == table.height >= 35  # 40 drawn, a few touch or overlap
    np.testing.assert_allclose(res["xy_px"], table.select("x_px", "y_px").to_numpy())
    assert list(res["cell_class"]) == table["cell_class"].to_list()
    # beyond the last whole tile (2 x 112 µm = 407 px at 0.55 µm/px) nuclei are found too
    assert (res["xy_px"][:, 0] > 420).sum() >= 5 and (table["x_um"].to_numpy() > 224).sum() >= 2
    labels = res["labels"]
    assert labels.shape == rgb.shape[:2] and len(np.unique(labels)) - 1 == table.height
