"""Issue #12: a few saturated, dust or pen pixels must not move the nucleus threshold."""

import numpy as np
import pytest

from immunodig.nuclei.classical import ClassicalSegmenter
from immunodig.nuclei.datasets import read_crchistophenotypes

#: ClassicalSegmenter before the fix: every pixel in Otsu's statistics, no clipping.
UNROBUST = {"saturation_level": -1, "stats_quantile": 1.0}


def _with_saturated_pixels(rgb: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Copy of ``rgb`` with ``fraction`` of its pixels given one zero channel (JPEG saturation)."""
    rng = np.random.default_rng(seed)
    out = rgb.copy()
    flat = out.reshape(-1, 3)
    idx = rng.choice(len(flat), int(fraction * len(flat)), replace=False)
    flat[idx, rng.integers(0, 3, len(idx))] = 0
    return out


def _with_dust(rgb: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Copy of ``rgb`` with ``n`` small black-grey specks (3-6 px)."""
    rng = np.random.default_rng(seed)
    out = rgb.copy()
    yy, xx = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]]
    for _ in range(n):
        x, y, r = rng.integers(0, rgb.shape[1]), rng.integers(0, rgb.shape[0]), rng.integers(2, 4)
        out[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = rng.integers(5, 30)
    return out


@pytest.fixture
def crc_image(crc_dir):
    return next(im for im in read_crchistophenotypes(crc_dir) if im.image_id == "img5")


def test_saturated_pixels_used_to_hide_every_nucleus(crc_image):
    """The reproduction: 0.2 % zero-channel pixels made the old threshold miss (almost) all nuclei."""
    noisy = _with_saturated_pixels(crc_image.rgb, 0.002, seed=0)
    clean_n = ClassicalSegmenter(**UNROBUST).segment(crc_image.rgb, crc_image.mpp).max()
    noisy_n = ClassicalSegmenter(**UNROBUST).segment(noisy, crc_image.mpp).max()
    assert clean_n > 100
    assert noisy_n < 0.2 * clean_n


@pytest.mark.parametrize("damage", ["saturation", "dust"])
def test_threshold_ignores_saturated_and_dust_pixels(crc_image, damage):
    rgb = crc_image.rgb
    damaged = _with_saturated_pixels(rgb, 0.002, seed=1) if damage == "saturation" else _with_dust(rgb, 25, seed=1)
    seg = ClassicalSegmenter()
    clean_n, damaged_n = seg.segment(rgb, crc_image.mpp).max(), seg.segment(damaged, crc_image.mpp).max()
    assert clean_n > 100
    assert 0.9 * clean_n <= damaged_n <= 1.15 * clean_n


def test_all_saturated_image_falls_back_to_every_pixel():
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 2] = 200
    labels = ClassicalSegmenter().segment(rgb, 0.5)
    assert labels.shape == (64, 64) and labels.dtype == np.int32


def test_real_aperio_slide_has_plausible_nucleus_density(cmu_slide):
    """CMU-1-Small-Region (JPEG Q30, 0.2 % zero-channel pixels): nuclei spread over the tissue."""
    from immunodig.slides.reader import Slide

    with Slide(cmu_slide) as slide:
        w, h = slide.dimensions
        rgb = slide.read(0, 0, (int(w * slide.mpp / 0.5), int(h * slide.mpp / 0.5)), 0.5)
    labels = ClassicalSegmenter().segment(rgb, 0.5)
    # 500 x 500 px (0.0625 mm²) cells with mostly tissue: every one must hold nuclei
    densities = []
    for y in range(0, rgb.shape[0] - 499, 500):
        for x in range(0, rgb.shape[1] - 499, 500):
            crop = rgb[y : y + 500, x : x + 500]
            tissue = (crop.mean(-1) < 215).mean()
            if tissue > 0.5:
                n = len(np.unique(labels[y : y + 500, x : x + 500])) - 1
                densities.append(n / (tissue * 0.0625))
    assert len(densities) >= 4
    assert min(densities) > 500  # per mm² of tissue; before the fix: 0 in every cell
