"""Seeded, position-addressed random fields: smooth noise, pixel grain and Voronoi cells.

Every value is a pure function of absolute slide coordinates and the slide seed, so a slide can be
rendered in any order of chunks (and a single tile rendered alone) with identical pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import ndimage

#: Side of the tileable noise textures, in texels (power of two).
TEXTURE_SIZE = 256
_MASK = TEXTURE_SIZE - 1
#: Texels per correlation length of a smooth texture.
TEXELS_PER_SCALE = 4.0
_N_SMOOTH = 8


@lru_cache(maxsize=1)
def _texture_bank() -> tuple[np.ndarray, np.ndarray]:
    """Tileable textures, identical in every process: (smooth bank (K,N,N), grain (N,N))."""
    rng = np.random.default_rng(20240611)
    smooth = np.empty((_N_SMOOTH, TEXTURE_SIZE, TEXTURE_SIZE), dtype=np.float32)
    for k in range(_N_SMOOTH):
        t = ndimage.gaussian_filter(rng.standard_normal((TEXTURE_SIZE, TEXTURE_SIZE)),
                                    TEXELS_PER_SCALE / 2.0, mode="wrap")
        smooth[k] = (t - t.mean()) / t.std()
    g = ndimage.gaussian_filter(rng.standard_normal((TEXTURE_SIZE, TEXTURE_SIZE)), 0.6,
                                mode="wrap")
    grain = ((g - g.mean()) / g.std()).astype(np.float32)
    return smooth, grain


def _hash_u32(a: np.ndarray, b: np.ndarray, key: int) -> np.ndarray:
    """Integer hash of two int arrays and a key, uint32 (wrapping arithmetic)."""
    h = (a.astype(np.uint32) * np.uint32(0x9E3779B1)) ^ (b.astype(np.uint32) * np.uint32(0x85EBCA77))
    h ^= np.uint32(key & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return h


def hash_unit(a: np.ndarray, b: np.ndarray, key: int) -> np.ndarray:
    """Uniform [0, 1) float32 hash of integer coordinates ``(a, b)`` and ``key``."""
    return (_hash_u32(a, b, key) >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


@dataclass(frozen=True)
class Fields:
    """Random fields of one slide.

    Parameters
    ----------
    seed : int
        Slide seed; fields with different ``key`` are independent.
    """

    seed: int
    _offsets: dict = field(default_factory=dict, compare=False, repr=False)

    def _offset(self, key: int) -> tuple[float, float, int]:
        if key not in self._offsets:
            r = np.random.default_rng([self.seed & 0xFFFFFFFF, key])
            ox, oy = r.uniform(0, TEXTURE_SIZE, size=2)
            self._offsets[key] = (float(ox), float(oy), int(r.integers(_N_SMOOTH)))
        return self._offsets[key]

    def key_int(self, key: int) -> int:
        """A 32-bit integer derived from the slide seed and ``key`` (for hashes)."""
        return int(np.random.default_rng([self.seed & 0xFFFFFFFF, key, 7]).integers(1 << 31))

    def smooth(self, x_um: np.ndarray, y_um: np.ndarray, scale_um: float, key: int) -> np.ndarray:
        """Smooth Gaussian-like noise (mean 0, sd ~1) with correlation length ``scale_um``."""
        bank, _ = _texture_bank()
        ox, oy, k = self._offset(key)
        tex = bank[k].ravel()
        inv = np.float32(TEXELS_PER_SCALE / scale_um)
        u = x_um * inv + np.float32(ox)
        v = y_um * inv + np.float32(oy)
        iu = np.floor(u)
        iv = np.floor(v)
        fu = u - iu
        fv = v - iv
        i0 = iu.astype(np.int32) & _MASK
        j0 = (iv.astype(np.int32) & _MASK) * TEXTURE_SIZE
        i1 = (i0 + 1) & _MASK
        j1 = (j0 + TEXTURE_SIZE) & (_MASK * TEXTURE_SIZE + _MASK)
        a = tex[j0 + i0]
        top = a + (tex[j0 + i1] - a) * fu
        c = tex[j1 + i0]
        bot = c + (tex[j1 + i1] - c) * fu
        return (top + (bot - top) * fv).astype(np.float32, copy=False)

    def grain(self, x_px: np.ndarray, y_px: np.ndarray, key: int) -> np.ndarray:
        """Pixel-scale grain (sd ~1) addressed by integer pixel coordinates."""
        _, g = _texture_bank()
        ox, oy, _ = self._offset(key)
        return g.ravel()[((y_px + int(oy)) & _MASK) * TEXTURE_SIZE + ((x_px + int(ox)) & _MASK)]

    def voronoi(self, x_um: np.ndarray, y_um: np.ndarray, spacing_um: float, key: int,
                jitter: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Jittered-grid Voronoi cells.

        Returns
        -------
        d1, d2 : numpy.ndarray
            Distances (µm) to the nearest and second-nearest seed.
        dx, dy : numpy.ndarray
            Offset (µm) of the point from its nearest seed.
        """
        kint = self.key_int(key)
        gx = np.floor(x_um / spacing_um).astype(np.int64)
        gy = np.floor(y_um / spacing_um).astype(np.int64)
        d1 = np.full(x_um.shape, np.inf, dtype=np.float32)
        d2 = np.full(x_um.shape, np.inf, dtype=np.float32)
        bdx = np.zeros(x_um.shape, dtype=np.float32)
        bdy = np.zeros(x_um.shape, dtype=np.float32)
        for oj in (-1, 0, 1):
            for oi in (-1, 0, 1):
                cx, cy = gx + oi, gy + oj
                sx, sy = seed_position(cx, cy, spacing_um, kint, jitter)
                ddx = (x_um - sx).astype(np.float32)
                ddy = (y_um - sy).astype(np.float32)
                d = np.sqrt(ddx * ddx + ddy * ddy)
                closer = d < d1
                d2 = np.where(closer, d1, np.minimum(d2, d))
                d1 = np.where(closer, d, d1)
                bdx = np.where(closer, ddx, bdx)
                bdy = np.where(closer, ddy, bdy)
        return d1, d2, bdx, bdy


def seed_position(cx: np.ndarray, cy: np.ndarray, spacing_um: float, kint: int,
                  jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """Seed of grid cell ``(cx, cy)`` of a jittered grid (µm)."""
    jx = hash_unit(cx, cy, kint)
    jy = hash_unit(cx, cy, kint ^ 0x5BD1E995)
    lo = 0.5 - jitter / 2
    return ((cx + lo + jitter * jx) * spacing_um, (cy + lo + jitter * jy) * spacing_um)


class Patch:
    """The pixels of one class inside a chunk, with cheap access to coarse-sampled fields.

    Parameters
    ----------
    xp, yp : numpy.ndarray
        Absolute level-0 pixel coordinates (flat int arrays) of the pixels.
    mpp : float
        Microns per pixel.
    fields : Fields
        The slide's fields.
    bbox_px : tuple, optional
        ``(x0, y0, x1, y1)`` enclosing the pixels (computed when omitted).
    """

    def __init__(self, xp: np.ndarray, yp: np.ndarray, mpp: float, fields: Fields,
                 bbox_px: tuple[int, int, int, int] | None = None) -> None:
        self.xp, self.yp, self.mpp, self.f = xp, yp, float(mpp), fields
        if bbox_px is None:
            bbox_px = (int(xp.min()), int(yp.min()), int(xp.max()) + 1, int(yp.max()) + 1)
        self._x0, self._y0 = bbox_px[0], bbox_px[1]
        self._w, self._h = bbox_px[2] - bbox_px[0], bbox_px[3] - bbox_px[1]
        self._um: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def um(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates in µm (float32)."""
        if self._um is None:
            m = np.float32(self.mpp)
            self._um = ((self.xp + 0.5).astype(np.float32) * m,
                        (self.yp + 0.5).astype(np.float32) * m)
        return self._um

    def grain(self, key: int) -> np.ndarray:
        return self.f.grain(self.xp, self.yp, key)

    def coarse(self, fn, step_um: float, linear: bool = False) -> np.ndarray:
        """``fn(x_um, y_um)`` evaluated on a grid of pitch ~``step_um`` over the patch, then read
        at every pixel (nearest grid node, or bilinear when ``linear``)."""
        step = max(1, int(round(step_um / self.mpp)))
        if step == 1:
            return fn(*self.um)
        gx0, gy0 = self._x0 // step, self._y0 // step
        nx = (self._x0 + self._w - 1) // step - gx0 + 2
        ny = (self._y0 + self._h - 1) // step - gy0 + 2
        off = 0.0 if linear else 0.5
        gx = ((np.arange(nx) + gx0 + off) * step * self.mpp).astype(np.float32)
        gy = ((np.arange(ny) + gy0 + off) * step * self.mpp).astype(np.float32)
        grid = fn(np.broadcast_to(gx[None, :], (ny, nx)), np.broadcast_to(gy[:, None], (ny, nx)))
        if not linear:
            return grid[self.yp // step - gy0, self.xp // step - gx0]
        fx = (self.xp + 0.5) / step - gx0
        fy = (self.yp + 0.5) / step - gy0
        ix = np.minimum(fx.astype(np.int64), nx - 2)
        iy = np.minimum(fy.astype(np.int64), ny - 2)
        tx = (fx - ix).astype(np.float32)
        ty = (fy - iy).astype(np.float32)
        top = grid[iy, ix] * (1 - tx) + grid[iy, ix + 1] * tx
        bot = grid[iy + 1, ix] * (1 - tx) + grid[iy + 1, ix + 1] * tx
        return top * (1 - ty) + bot * ty
