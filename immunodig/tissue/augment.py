"""Tile augmentation for training: dihedral transforms, HED stain jitter, colour jitter, crops.

All functions take and return uint8 RGB tiles ``(H, W, 3)`` and draw randomness only from the
``numpy.random.Generator`` they are given, so training is reproducible from a seed.
"""

from __future__ import annotations

import numpy as np

from immunodig.slides import stain


def dihedral(tile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random flip and 90° rotation (one of the 8 symmetries of the square)."""
    out = np.rot90(tile, int(rng.integers(4)))
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def hed_jitter(tile: np.ndarray, rng: np.random.Generator, sigma: float = 0.08,
               bias: float = 0.02) -> np.ndarray:
    """Perturb the haematoxylin, eosin and DAB concentrations (Tellez et al. 2019): each becomes
    ``c * U(1 - sigma, 1 + sigma) + U(-bias, bias)`` (:func:`immunodig.slides.stain.hed_jitter`)."""
    return stain.hed_jitter(tile, rng, sigma, bias).astype(np.uint8)


def colour_jitter(tile: np.ndarray, rng: np.random.Generator, brightness: float = 0.08,
                  contrast: float = 0.1, saturation: float = 0.1) -> np.ndarray:
    """Random brightness, contrast and saturation change."""
    x = tile.astype(np.float32)
    x = x * rng.uniform(1 - brightness, 1 + brightness)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * rng.uniform(1 - saturation, 1 + saturation) + grey
    return np.clip(x, 0, 255).astype(np.uint8)


def random_resized_crop(tile: np.ndarray, rng: np.random.Generator, min_scale: float = 0.8) -> np.ndarray:
    """Crop a random square of ``min_scale``-1 of the edge and resize back (bilinear).

    The scale change stays small: tiles carry a physical resolution (µm/px) that the model
    relies on.
    """
    from PIL import Image

    h, w = tile.shape[:2]
    side = int(round(min(h, w) * rng.uniform(min_scale, 1.0)))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = tile[y0:y0 + side, x0:x0 + side]
    if side == h and side == w:
        return np.ascontiguousarray(crop)
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))


def augment_tile(tile: np.ndarray, rng: np.random.Generator, *, stain_sigma: float = 0.08,
                 crop_min_scale: float = 0.85) -> np.ndarray:
    """Full training augmentation: dihedral, crop, HED jitter and colour jitter."""
    out = dihedral(tile, rng)
    out = random_resized_crop(out, rng, crop_min_scale)
    out = hed_jitter(out, rng, sigma=stain_sigma)
    return colour_jitter(out, rng)
