"""Tissue detection on a low-resolution thumbnail.

Tissue is where the image is both coloured (HSV saturation) and absorbing (optical density), or
textured (local standard deviation of grey above ``MIN_TEXTURE_STD`` over ~40 µm: adipose tissue
is nearly colourless but its cell membranes make texture, while glass is flat). The threshold on
saturation is Otsu's, bounded so that an all-background slide does not turn noise into tissue.
The binary mask is closed, hole-filled (adipose lumens and glands inside tissue count as tissue),
opened by one pixel and cleared of objects smaller than ``min_object_mm2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from immunodig.slides.reader import Slide

#: Saturation below which a pixel is never tissue (scanner glass is ~0.02-0.05).
MIN_SATURATION = 0.07
#: Mean optical density (RGB) below which a pixel is never tissue.
MIN_OD = 0.04
#: Local grey-level standard deviation (0-255 scale, 5x5 thumbnail pixels) marking textured
#: tissue; glass on real scans lies at ~0.3-0.5, adipose membranes at ~5-10.
MIN_TEXTURE_STD = 2.5


@dataclass(frozen=True)
class TissueMask:
    """Binary tissue mask with its resolution.

    Attributes
    ----------
    mask : numpy.ndarray
        ``(h, w)`` bool at ``mpp`` µm/px, covering the slide from its top-left corner.
    mpp : float
        Microns per pixel of the mask.
    """

    mask: np.ndarray
    mpp: float

    @property
    def area_mm2(self) -> float:
        """Tissue area in mm²."""
        return float(self.mask.sum()) * (self.mpp / 1000.0) ** 2

    def save_png(self, path: str | Path) -> None:
        """Write the mask as an 8-bit PNG (0 / 255), atomically."""
        from PIL import Image

        from immunodig.io import atomic_path

        with atomic_path(path) as tmp:
            Image.fromarray(self.mask.astype(np.uint8) * 255).save(tmp, format="PNG")

    @classmethod
    def load_png(cls, path: str | Path, mpp: float) -> "TissueMask":
        """Read a mask written by :meth:`save_png`."""
        from PIL import Image

        return cls(np.asarray(Image.open(path)) > 127, mpp)


def detect_tissue(
    rgb: np.ndarray,
    mpp: float,
    min_object_mm2: float = 0.005,
    closing_um: float = 50.0,
) -> np.ndarray:
    """Return a boolean tissue mask for an RGB thumbnail.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(h, w, 3)`` uint8 thumbnail.
    mpp : float
        Its microns per pixel.
    min_object_mm2 : float
        Connected components smaller than this are removed (dust, debris on the glass).
    closing_um : float
        Radius of the morphological closing that bridges thin gaps (e.g. adipocyte membranes).
    """
    from scipy import ndimage as ndi
    from skimage import color, filters, morphology

    if rgb.size == 0:
        return np.zeros(rgb.shape[:2], dtype=bool)
    sat = color.rgb2hsv(rgb)[..., 1]
    od = -np.log(np.clip(rgb.astype(np.float32), 1, 255) / 255.0).mean(axis=-1)
    candidates = sat[(sat > MIN_SATURATION) & (od > MIN_OD)]
    if candidates.size < 16:
        return np.zeros(rgb.shape[:2], dtype=bool)
    try:
        thr = max(MIN_SATURATION, float(filters.threshold_otsu(sat)))
    except ValueError:
        thr = MIN_SATURATION
    # Otsu splits glass from tissue only when both are present; cap it so weakly stained
    # tissue (fat, mucus) is kept when the slide is mostly tissue.
    thr = min(thr, 0.15)
    grey = rgb.astype(np.float32).mean(axis=-1)
    mean = ndi.uniform_filter(grey, 5)
    std = np.sqrt(np.maximum(ndi.uniform_filter(grey * grey, 5) - mean * mean, 0))
    mask = ((sat > thr) & (od > MIN_OD)) | (std > MIN_TEXTURE_STD)
    radius = max(1, int(round(closing_um / mpp)))
    mask = morphology.closing(mask, morphology.disk(radius))
    mask = ndi.binary_fill_holes(mask)
    mask = morphology.opening(mask, morphology.disk(1))
    min_px = max(1, int(min_object_mm2 / (mpp / 1000.0) ** 2))
    mask = morphology.remove_small_objects(mask, max_size=min_px)
    return mask


def tissue_mask(slide: Slide, mask_mpp: float = 8.0) -> TissueMask:
    """Compute the tissue mask of a slide from a thumbnail at ``mask_mpp``."""
    thumb = slide.thumbnail(mask_mpp)
    return TissueMask(detect_tissue(thumb, mask_mpp), mask_mpp)
