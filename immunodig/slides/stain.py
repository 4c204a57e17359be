"""Stain maths in one place: optical density, colour deconvolution, stain vectors, HED jitter.

* Optical density (Beer-Lambert): ``od = -ln((I + offset) / i0)`` (:func:`od_from_rgb`) and back
  (:func:`rgb_from_od`); the ``+1`` offset keeps black pixels finite.
* Ruifrok-Johnston colour deconvolution (Ruifrok & Johnston, *Anal Quant Cytol Histol* 2001)
  into haematoxylin, eosin and DAB: :func:`rgb_to_hed` / :func:`hed_to_rgb` are
  ``skimage.color.rgb2hed`` / ``hed2rgb`` (their OD is ``ln(max(I/255, 1e-6)) / ln(1e-6)``,
  i.e. divided by ln 10⁶), :func:`haematoxylin_od`, :func:`eosin_od`, :func:`dab_od` their
  channels; :data:`HED_FROM_RGB` / :data:`RGB_FROM_HED` the matrices for natural-log OD.
* Stain vectors: :data:`MACENKO_HAEMATOXYLIN`, :data:`MACENKO_EOSIN` (Macenko et al., ISBI 2009
  reference vectors) and :data:`RUIFROK_DAB`, OD per unit concentration (R, G, B).
* HED jitter (Tellez et al., *Med Image Anal* 2019): :func:`hed_jitter` scales and shifts each
  stain's concentration of an image (or of each image of a batch).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from skimage.color import hed_from_rgb as _SK_HED_FROM_RGB
from skimage.color import rgb_from_hed as _SK_RGB_FROM_HED

#: Deconvolution matrix: ``hed = od @ HED_FROM_RGB`` (rows R, G, B; columns H, E, DAB).
HED_FROM_RGB: Final[np.ndarray] = np.asarray(_SK_HED_FROM_RGB, dtype=np.float64)
#: Its inverse: ``od = hed @ RGB_FROM_HED``.
RGB_FROM_HED: Final[np.ndarray] = np.asarray(_SK_RGB_FROM_HED, dtype=np.float64)

#: Macenko et al. (2009) reference haematoxylin OD per unit concentration (R, G, B).
MACENKO_HAEMATOXYLIN: Final[tuple[float, float, float]] = (0.5626, 0.7201, 0.4062)
#: Macenko et al. (2009) reference eosin OD per unit concentration (R, G, B).
MACENKO_EOSIN: Final[tuple[float, float, float]] = (0.2159, 0.8012, 0.5581)
#: Ruifrok & Johnston (2001) DAB OD per unit concentration (R, G, B).
RUIFROK_DAB: Final[tuple[float, float, float]] = (0.2681, 0.5703, 0.7764)


def od_from_rgb(rgb: np.ndarray, i0: float = 256.0, offset: float = 1.0, dtype: type = np.float32) -> np.ndarray:
    """Optical density ``-ln((rgb + offset) / i0)`` in ``dtype``, same shape as ``rgb``."""
    return -np.log((np.asarray(rgb).astype(dtype) + dtype(offset)) / dtype(i0))


def rgb_from_od(od: np.ndarray, i0: float = 256.0, offset: float = 1.0) -> np.ndarray:
    """Intensity ``exp(-od) * i0 - offset`` (inverse of :func:`od_from_rgb`; not clipped)."""
    od = np.asarray(od)
    return np.exp(-od) * od.dtype.type(i0) - od.dtype.type(offset)


def rgb_to_hed(rgb: np.ndarray) -> np.ndarray:
    """Haematoxylin, eosin and DAB concentrations (float64 (..., 3); ``skimage.color.rgb2hed``)."""
    from skimage.color import rgb2hed

    return rgb2hed(rgb)


def hed_to_rgb(hed: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] from :func:`rgb_to_hed` concentrations (``skimage.color.hed2rgb``)."""
    from skimage.color import hed2rgb

    return hed2rgb(hed)


def haematoxylin_od(rgb: np.ndarray) -> np.ndarray:
    """Haematoxylin channel of :func:`rgb_to_hed` (float32 (H, W))."""
    return rgb_to_hed(rgb)[..., 0].astype(np.float32)


def eosin_od(rgb: np.ndarray) -> np.ndarray:
    """Eosin channel of :func:`rgb_to_hed` (float32 (H, W))."""
    return rgb_to_hed(rgb)[..., 1].astype(np.float32)


def dab_od(rgb: np.ndarray) -> np.ndarray:
    """DAB channel of :func:`rgb_to_hed` (float32 (H, W))."""
    return rgb_to_hed(rgb)[..., 2].astype(np.float32)


def hed_jitter(
    rgb: np.ndarray,
    rng: np.random.Generator,
    sigma: float,
    bias: float,
    bias_per_std: bool = False,
) -> np.ndarray:
    """HED stain jitter (Tellez et al. 2019) of one image (H, W, 3) or a batch (B, H, W, 3).

    The natural-log OD (:func:`od_from_rgb`, float32) is deconvolved with :data:`HED_FROM_RGB`;
    per image and stain the concentration ``c`` becomes ``c * U(1 - sigma, 1 + sigma) + b`` with
    ``b = U(-bias, bias)``, times the stain's standard deviation in the image when
    ``bias_per_std`` (sample standard deviation, ddof 1); then back to intensities. Draws, in this order: the scales
    (``(B, 3)`` values), then the shifts (``(B, 3)``).

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``rgb``, clipped to [0, 255] (not rounded).
    """
    x = np.asarray(rgb)
    batch = x[None] if x.ndim == 3 else x
    b = batch.shape[0]
    hed = od_from_rgb(batch) @ HED_FROM_RGB.astype(np.float32)
    scale = rng.uniform(1 - sigma, 1 + sigma, (b, 3)).astype(np.float32)
    shift = rng.uniform(-bias, bias, (b, 3)).astype(np.float32)
    if bias_per_std:
        shift = shift * hed.reshape(b, -1, 3).std(axis=1, ddof=1)
    hed = hed * scale[:, None, None, :] + shift[:, None, None, :]
    out = np.clip(rgb_from_od(hed @ RGB_FROM_HED.astype(np.float32)), 0, 255)
    return out[0] if x.ndim == 3 else out
