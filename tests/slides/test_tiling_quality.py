"""Tile grid geometry, tile QC flags and Macenko normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from immunodig.slides import TissueMask, tile_grid, tile_quality
from immunodig.slides.stain_norm import estimate_stains, fit_reference, normalise


def test_grid_covers_a_known_rectangle_exactly():
    # mask at 8 µm/px: tissue rectangle 14..42 px (x), 28..56 px (y) = 224x224 µm-multiples
    m = np.zeros((100, 100), bool)
    m[28:56, 14:42] = True
    mask = TissueMask(m, 8.0)
    grid = tile_grid(mask, slide_mpp=0.25, slide_dimensions=(3200, 3200), target_mpp=0.5,
                     tile_size_px=224)
    full = grid.filter(grid["tissue_fraction"] == 1.0)
    # tissue spans x 112..336 µm and y 224..448 µm -> exactly 2x2 tiles of 112 µm
    assert sorted(zip(full["col"], full["row"])) == [(1, 2), (1, 3), (2, 2), (2, 3)]
    assert grid.height == 4
    assert (grid["x_px"] == grid["col"] * 448).all()  # 112 µm / 0.25 µm/px
    assert (grid["w_px"] == 448).all()
    assert (grid["x_um"] == grid["col"] * 112.0).all()
    # tissue area recovered from fractions
    area = (grid["tissue_fraction"] * 112.0**2).sum()
    assert area == pytest.approx(mask.mask.sum() * 64.0)


def test_partial_tiles_flagged_background():
    m = np.zeros((50, 50), bool)
    m[0:14, 0:4] = True  # 32 µm wide strip inside one 112 µm tile
    grid = tile_grid(TissueMask(m, 8.0), 0.5, (1000, 1000), min_tissue_fraction=0.5)
    assert grid.height == 1
    assert grid["tissue_fraction"][0] == pytest.approx(4 / 14)
    assert grid["qc_background"][0]


def test_empty_mask_gives_empty_grid():
    grid = tile_grid(TissueMask(np.zeros((10, 10), bool), 8.0), 0.5, (100, 100))
    assert grid.height == 0 and "qc_background" in grid.columns


@pytest.fixture(scope="module")
def real_tile(shared_data):
    from PIL import Image

    p = sorted((shared_data / "kather-crc-val-he-7k" / "TUM").glob("*.tif"))[0]
    return np.asarray(Image.open(p).convert("RGB"))


def test_quality_passes_real_tissue_and_flags_blur_pen_background(real_tile):
    assert tile_quality(real_tile)["qc_pass"]
    blurred = ndi.gaussian_filter(real_tile.astype(float), sigma=(4, 4, 0)).astype(np.uint8)
    q = tile_quality(blurred)
    assert not q["qc_pass"] and q["qc_reason"] == "blur"
    pen = real_tile.copy()
    pen[:, :60] = (20, 140, 40)  # green marker stripe over a quarter of the tile
    assert tile_quality(pen)["qc_reason"] == "pen"
    glass = np.full_like(real_tile, 242)
    assert tile_quality(glass)["qc_reason"] == "background"


def test_macenko_recovers_reference_stains(real_tile):
    ref = fit_reference(real_tile)
    out = normalise(real_tile, ref)
    stains, _ = estimate_stains(out)
    assert np.abs(stains - np.asarray(ref.stain_matrix)).max() < 0.05
    # re-staining a colour-shifted copy brings it back near the original
    shifted = np.clip(real_tile.astype(int) * [1.0, 0.85, 1.1], 0, 255).astype(np.uint8)
    back = normalise(shifted, ref)
    assert np.abs(back.astype(int) - out.astype(int)).mean() < 12
    assert normalise(np.full((32, 32, 3), 250, np.uint8), ref).mean() == 250  # no tissue: unchanged
