"""Stream a slide, strip by strip, into a tiled JPEG pyramidal TIFF that openslide opens.

Level 0 is written tile by tile as strips are rendered (only one strip of full-resolution pixels
is held in memory); lower levels (each 4x smaller) are accumulated from the strips and written
after it as further tiled pages (NewSubfileType = reduced image), the layout OpenSlide's
"generic-tiff" reader expects. Resolution tags are written in centimetres, so openslide reports
``openslide.mpp-x`` = ``mpp``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from immunodig.io import atomic_path

TILE_PX = 256
STRIP_PX = 512
LEVEL_DOWNSAMPLE = 4
JPEG_QUALITY = 90

StripSource = Callable[[int, int], np.ndarray]


def _downsample(img: np.ndarray, f: int) -> np.ndarray:
    """Block-mean downsample of an RGB uint8 image by ``f`` (remainder rows/columns dropped)."""
    h, w = img.shape[0] // f, img.shape[1] // f
    blocks = img[: h * f, : w * f].reshape(h, f, w, f, 3)
    return (blocks.sum(axis=(1, 3), dtype=np.uint32) // (f * f)).astype(np.uint8)


def _level_shapes(height: int, width: int) -> list[tuple[int, int]]:
    shapes = [(height, width)]
    while max(shapes[-1]) // LEVEL_DOWNSAMPLE >= TILE_PX:
        h, w = shapes[-1]
        shapes.append((h // LEVEL_DOWNSAMPLE, w // LEVEL_DOWNSAMPLE))
    return shapes


def write_pyramid_tiff(path: str | os.PathLike, height_px: int, width_px: int,
                       strip_source: StripSource, mpp: float | None, description: str,
                       quality: int = JPEG_QUALITY) -> int:
    """Write a pyramidal tiled JPEG TIFF; atomic (temporary name, then rename).

    Parameters
    ----------
    path : path-like
        Destination ``.tiff``.
    height_px, width_px : int
        Level-0 size.
    strip_source : callable
        ``strip_source(y0_px, rows) -> uint8 (rows, width_px, 3)``, called in increasing ``y0_px``.
    mpp : float or None
        Microns per pixel written to the resolution tags; ``None`` writes no resolution (a slide
        without mpp metadata, for error-path tests).
    description : str
        ImageDescription of level 0 (must not start with a vendor signature such as "Aperio").
    quality : int
        JPEG quality.

    Returns
    -------
    int
        Number of pyramid levels written.
    """
    import tifffile

    path = Path(path)
    shapes = _level_shapes(height_px, width_px)
    lower = [np.zeros(s + (3,), dtype=np.uint8) for s in shapes[1:]]

    def tiles() -> Iterator[np.ndarray]:
        for y0 in range(0, height_px, STRIP_PX):
            rows = min(STRIP_PX, height_px - y0)
            strip = strip_source(y0, rows)
            if lower:
                f = LEVEL_DOWNSAMPLE
                small = _downsample(strip, f)
                r0 = y0 // f
                n = min(small.shape[0], lower[0].shape[0] - r0)
                lower[0][r0:r0 + n] = small[:n, : lower[0].shape[1]]
            pad_h = -rows % TILE_PX
            pad_w = -width_px % TILE_PX
            if pad_h or pad_w:
                strip = np.pad(strip, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=255)
            for ty in range(0, strip.shape[0], TILE_PX):
                for tx in range(0, strip.shape[1], TILE_PX):
                    yield strip[ty:ty + TILE_PX, tx:tx + TILE_PX]

    common = dict(tile=(TILE_PX, TILE_PX), photometric="rgb", compression="jpeg",
                  compressionargs={"level": quality}, metadata=None)

    def res(level: int) -> dict:
        if mpp is None:
            return {}
        per_cm = 1e4 / (mpp * LEVEL_DOWNSAMPLE ** level)
        return {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"}

    with atomic_path(path) as tmp:
        big = height_px * width_px * 3 > 3_000_000_000
        with tifffile.TiffWriter(tmp, bigtiff=big) as tw:
            tw.write(tiles(), shape=(height_px, width_px, 3), dtype=np.uint8, description=description,
                     software="immunodig.synthetic", subfiletype=0, **common, **res(0))
            for i, lvl in enumerate(lower, start=1):
                if i < len(lower):
                    lower[i][:] = _downsample(lvl, LEVEL_DOWNSAMPLE)[: lower[i].shape[0],
                                                                     : lower[i].shape[1]]
                tw.write(lvl, subfiletype=1, **common, **res(i))
    return len(shapes)
