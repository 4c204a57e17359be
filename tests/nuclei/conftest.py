"""Fixtures of the nuclei tests: the shared real data (skipped when absent) and synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def monuseg_dir() -> Path:
    path = SHARED / "monuseg"
    if not (path / "TCGA-NH-A8F7-01A-01-TS1.tif").exists():
        pytest.skip(f"MoNuSeg data not found at {path}")
    return path


@pytest.fixture
def crc_dir() -> Path:
    path = SHARED / "crchistophenotypes"
    if not (path / "img5" / "img5.bmp").exists():
        pytest.skip(f"CRCHistoPhenotypes data not found at {path}")
    return path


def draw_nuclei(shape: tuple[int, int], centres_px: list[tuple[float, float]], radius_px: float,
                colour=(70, 40, 120), background=(235, 205, 225)) -> np.ndarray:
    """RGB image with dark discs (nuclei) at ``centres_px`` (x, y) on a pink background."""
    h, w = shape
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = background
    yy, xx = np.mgrid[0:h, 0:w]
    for x, y in centres_px:
        img[(xx - x) ** 2 + (yy - y) ** 2 <= radius_px**2] = colour
    return img


class ArraySlide:
    """Minimal in-memory slide: ``read`` crops level 0 (no resampling: ``mpp`` must match)."""

    def __init__(self, rgb: np.ndarray, mpp: float) -> None:
        self.rgb, self.mpp, self.mpp_x, self.mpp_y = rgb, mpp, mpp, mpp
        self.reads = 0

    @property
    def size_um(self) -> tuple[float, float]:
        return self.rgb.shape[1] * self.mpp, self.rgb.shape[0] * self.mpp

    def read(self, x_px: float, y_px: float, size_px: tuple[int, int], mpp: float) -> np.ndarray:
        assert abs(mpp - self.mpp) < 1e-9
        self.reads += 1
        w, h = size_px
        out = np.full((h, w, 3), 255, dtype=np.uint8)
        x0, y0 = int(round(x_px)), int(round(y_px))
        sx0, sy0 = max(0, x0), max(0, y0)
        sx1, sy1 = min(self.rgb.shape[1], x0 + w), min(self.rgb.shape[0], y0 + h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = self.rgb[sy0:sy1, sx0:sx1]
        return out
