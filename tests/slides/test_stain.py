"""One stain module (immunodig.slides.stain): same numbers as the implementations it replaced.

The ``_old_*`` functions are the previous code, copied verbatim (patch_net.hed_jitter,
tissue/augment.hed_jitter, stain_norm's OD, synthetic.stain.od_to_rgb), as the reference.
"""

import numpy as np
import pytest
from skimage.color import hed2rgb, hed_from_rgb, rgb2hed, rgb_from_hed

from immunodig.slides import stain


def _old_patch_net_hed_jitter(patches, sigma, rng):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(patches)).float()
    hed = -torch.log((x + 1) / 256) @ torch.tensor(hed_from_rgb, dtype=torch.float32)
    b = len(x)
    scale = torch.from_numpy(rng.uniform(1 - sigma, 1 + sigma, (b, 1, 1, 3))).float()
    shift = torch.from_numpy(rng.uniform(-sigma, sigma, (b, 1, 1, 3))).float()
    shift = shift * hed.flatten(1, 2).std(1)[:, None, None, :]
    od = (hed * scale + shift) @ torch.tensor(rgb_from_hed, dtype=torch.float32)
    return (torch.exp(-od) * 256 - 1).clamp(0, 255)


def _old_augment_hed_jitter(tile, rng, sigma=0.08, bias=0.02):
    inverse = np.asarray(hed_from_rgb, dtype=np.float32)
    od = -np.log((tile.astype(np.float32) + 1.0) / 256.0)
    hed = od.reshape(-1, 3) @ inverse
    alpha = rng.uniform(1 - sigma, 1 + sigma, 3).astype(np.float32)
    beta = rng.uniform(-bias, bias, 3).astype(np.float32)
    hed = hed * alpha + beta
    od2 = np.maximum(hed @ np.linalg.inv(inverse), 0).reshape(od.shape)
    return np.clip(np.exp(-od2) * 256.0 - 1.0, 0, 255).astype(np.uint8)


def _old_od_to_rgb(h, e, dab=None):
    hv = np.array([0.5626, 0.7201, 0.4062], dtype=np.float32)
    ev = np.array([0.2159, 0.8012, 0.5581], dtype=np.float32)
    dv = np.array([0.2681, 0.5703, 0.7764], dtype=np.float32)
    out = np.empty(h.shape + (3,), dtype=np.uint8)
    for c in range(3):
        od = h * hv[c] + e * ev[c]
        if dab is not None:
            od += dab * dv[c]
        val = np.exp(od * np.float32(-np.log(10.0)))
        val *= np.float32(248.0)
        val += np.float32(0.5)
        np.clip(val, 0, 255, out=val)
        out[..., c] = val
    return out


@pytest.fixture
def rgb():
    return np.random.default_rng(1).integers(0, 256, (6, 20, 24, 3)).astype(np.uint8)


def test_deconvolution_is_rgb2hed(rgb):
    np.testing.assert_array_equal(stain.rgb_to_hed(rgb[0]), rgb2hed(rgb[0]))
    for i, f in enumerate((stain.haematoxylin_od, stain.eosin_od, stain.dab_od)):
        out = f(rgb[0])
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, rgb2hed(rgb[0])[..., i].astype(np.float32))
    hed = rgb2hed(rgb[0])
    np.testing.assert_array_equal(stain.hed_to_rgb(hed), hed2rgb(hed))


def test_od_round_trip_and_stain_norm_convention(rgb):
    od = stain.od_from_rgb(rgb, i0=240.0, dtype=np.float64)
    np.testing.assert_array_equal(od.reshape(-1, 3), -np.log((rgb.reshape(-1, 3).astype(np.float64) + 1.0) / 240.0))
    np.testing.assert_allclose(stain.rgb_from_od(stain.od_from_rgb(rgb)), rgb, atol=1e-3)


def test_hed_jitter_matches_patch_net_version(rgb):
    new = stain.hed_jitter(rgb, np.random.default_rng(5), 0.2, 0.2, bias_per_std=True)
    old = _old_patch_net_hed_jitter(rgb, 0.2, np.random.default_rng(5)).numpy()
    assert new.dtype == np.float32 and new.shape == rgb.shape
    np.testing.assert_allclose(new, old, atol=2e-3)


def test_hed_jitter_matches_tissue_augment_version(rgb):
    for seed in range(5):
        new = stain.hed_jitter(rgb[seed], np.random.default_rng(seed), 0.08, 0.02).astype(np.uint8)
        old = _old_augment_hed_jitter(rgb[seed], np.random.default_rng(seed))
        # float32 inverse of the rounded matrix vs. the exact inverse: a truncation may flip by 1
        assert np.abs(new.astype(int) - old).max() <= 1 and (new != old).mean() < 0.01


def test_hed_jitter_identity_and_strength(rgb):
    same = stain.hed_jitter(rgb, np.random.default_rng(0), 0.0, 0.0)
    np.testing.assert_allclose(same, rgb, atol=0.01)
    jit = stain.hed_jitter(rgb, np.random.default_rng(0), 0.2, 0.2, bias_per_std=True)
    assert (np.abs(jit - rgb).mean((1, 2, 3)) > 0.5).all()


def test_synthetic_rendering_unchanged():
    from immunodig.synthetic.stain import od_to_rgb

    g = np.random.default_rng(2)
    h, e, d = (g.uniform(0, 2, (30, 40)).astype(np.float32) for _ in range(3))
    np.testing.assert_array_equal(od_to_rgb(h, e), _old_od_to_rgb(h, e))
    np.testing.assert_array_equal(od_to_rgb(h, e, d), _old_od_to_rgb(h, e, d))


def test_stain_norm_unchanged():
    """Macenko normalisation of a rendered image: sha256 of the previous code's output."""
    import hashlib

    from immunodig.slides.stain_norm import DEFAULT_REFERENCE, normalise

    g = np.random.default_rng(3)
    img = _old_od_to_rgb(g.uniform(0, 1.5, (40, 40)).astype(np.float32), g.uniform(0, 1.0, (40, 40)).astype(np.float32))
    assert DEFAULT_REFERENCE.stain_matrix == (stain.MACENKO_HAEMATOXYLIN, stain.MACENKO_EOSIN)
    out = normalise(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    digest = "5e29fd1aa108b82bd8b9d60018d1cfea592aedd4a8c13f2dbb7870fda193fb18"
    assert hashlib.sha256(out.tobytes()).hexdigest() == digest
