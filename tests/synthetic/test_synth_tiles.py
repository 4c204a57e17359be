"""render_class_tile: shape, determinism and class-specific appearance."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.synthetic import render_class_tile
from immunodig.vocab import KATHER_CLASSES


def _h_od(rgb: np.ndarray) -> np.ndarray:
    """Haematoxylin-dominated darkness proxy: optical density of the red channel."""
    return -np.log10(np.maximum(rgb[..., 0].astype(float), 1.0) / 255.0)


@pytest.mark.parametrize("cls", KATHER_CLASSES)
def test_tile_shape_and_determinism(cls):
    a = render_class_tile(cls, 96, 0.5, np.random.default_rng(3))
    b = render_class_tile(cls, 96, 0.5, np.random.default_rng(3))
    c = render_class_tile(cls, 96, 0.5, np.random.default_rng(4))
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_class_appearance_is_distinct():
    rng = np.random.default_rng(0)
    mean = {c: np.mean([render_class_tile(c, 128, 0.5, rng).reshape(-1, 3).mean(0)
                        for _ in range(4)], axis=0) for c in KATHER_CLASSES}
    assert mean["BACK"].min() > 225  # white glass
    assert mean["ADI"].mean() > 200  # mostly empty fat cells
    assert mean["LYM"].mean() < mean["STR"].mean() - 30  # packed dark nuclei
    assert mean["MUS"][0] - mean["MUS"][1] > 60  # eosinophilic: red >> green
    assert mean["MUC"].mean() > mean["TUM"].mean() + 30  # pale mucus vs crowded tumour


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown Kather class"):
        render_class_tile("XYZ", 32, 0.5, np.random.default_rng(0))


def test_tile_scale_follows_mpp():
    """Lymphocytes keep their size in µm: at half the mpp they cover 4x the pixels."""
    rng = np.random.default_rng(1)

    def dark_blob_area_px(mpp):
        from skimage.measure import label, regionprops

        areas = []
        for _ in range(3):
            t = render_class_tile("LYM", 200, mpp, rng)
            lab = label(t.mean(axis=2) < 80)
            areas += [r.area for r in regionprops(lab) if r.area > 5]
        return np.median(areas)

    ratio = dark_blob_area_px(0.25) / dark_blob_area_px(0.5)
    assert 2.8 < ratio < 5.5
