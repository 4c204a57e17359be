"""IHC: DAB positive-cell detection, rigid registration to H&E, IHC-vs-H&E validation."""

import numpy as np
import polars as pl
import pytest
from skimage.color import hed2rgb

from immunodig.nuclei.ihc import (
    PositiveCellDetector,
    _rotate_points_mask,
    detect_positive_slide,
    rigid_register,
    validate_ihc,
)
from tests.nuclei.conftest import ArraySlide


def ihc_image(shape, positive, negative, radius_px):
    """Synthetic IHC: DAB discs (positive cells) and haematoxylin-only discs (negative nuclei)."""
    hed = np.zeros((*shape, 3))
    hed[..., 0] = 0.01
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    for x, y in positive:
        d = (xx - x) ** 2 + (yy - y) ** 2 <= radius_px**2
        hed[d, 2] = 0.15
        hed[d, 0] = 0.05
    for x, y in negative:
        hed[(xx - x) ** 2 + (yy - y) ** 2 <= radius_px**2, 0] = 0.12
    return (np.clip(hed2rgb(hed), 0, 1) * 255).astype(np.uint8)


def test_positive_cells_detected_negatives_ignored():
    pos = [(20, 20), (60, 25), (40, 70), (90, 90)]
    neg = [(90, 20), (20, 90)]
    rgb = ihc_image((120, 120), pos, neg, radius_px=8)  # 0.5 µm/px: 4 µm radius
    res = PositiveCellDetector().detect(rgb, 0.5)
    assert len(res["x_px"]) == len(pos)
    got = sorted(zip(np.round(res["x_px"]), np.round(res["y_px"])))
    assert got == sorted((float(x), float(y)) for x, y in pos)


def test_slide_detection_deduplicates_at_tile_borders():
    pos = [(64, 64), (32, 100), (100, 20)]
    slide = ArraySlide(ihc_image((128, 128), pos, [], radius_px=8), 0.5)
    tiles = pl.DataFrame({"x_um": [0.0, 32.0, 0.0, 32.0], "y_um": [0.0, 0.0, 32.0, 32.0], "qc_pass": [True] * 4})
    cells = detect_positive_slide(slide, tiles, tile_um=32.0, mpp=0.5, overlap_um=12, block_tiles=1)
    assert cells.height == 3


def test_rigid_registration_recovers_rotation_and_shift():
    fixed = np.zeros((160, 180), bool)
    fixed[50:100, 60:90] = True
    fixed[80:110, 90:140] = True  # an L shape (no rotational symmetry), far from the canvas edge
    ys, xs = np.nonzero(fixed)
    centre = np.array([xs.mean(), ys.mean()])
    moving = np.roll(_rotate_points_mask(fixed, 50.0, centre, fixed.shape), (6, -9), axis=(0, 1))
    t = rigid_register(fixed, moving, mpp=10.0)
    assert t.overlap_dice > 0.9
    ym, xm = np.nonzero(moving)
    mapped = t.apply(np.c_[xm, ym] * 10.0) / 10.0
    np.testing.assert_allclose(mapped.mean(axis=0), centre, atol=1.5)


def test_validate_ihc_spearman():
    long = pl.DataFrame({
        "patient_id": ["p1", "p2", "p3", "p4", "p1", "p2", "p3", "p4", "p5"],
        "feature": ["til_density_tumour_region_per_mm2"] * 4 + ["cd3_density_tumour_region_per_mm2"] * 5,
        "value": [10.0, 20.0, 30.0, 40.0, 100.0, 150.0, 400.0, 800.0, 5.0],
    })
    res = validate_ihc(long)
    assert res["n_patients"] == 4 and res["spearman_rho"] == pytest.approx(1.0)
