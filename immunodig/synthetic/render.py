"""Render any rectangle of a synthetic slide, or a single-class tile, from layout + nuclei."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.synthetic.fields import Fields, Patch
from immunodig.synthetic.nuclei import NucleusDensities, NucleusTable, draw_nuclei, sample_nuclei
from immunodig.synthetic.stain import od_to_rgb
from immunodig.synthetic.textures import BACKGROUNDS
from immunodig.vocab import KATHER_CLASSES


@dataclass(frozen=True)
class Appearance:
    """Slide-wide appearance: fibre orientations (radians) and stain intensity scales."""

    stroma_angle: float = 0.3
    muscle_angle: float = 1.2
    h_scale: float = 1.0
    e_scale: float = 1.0

    @property
    def angles(self) -> dict[str, float]:
        return {"STR": self.stroma_angle, "MUS": self.muscle_angle}

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Appearance":
        """Slide-to-slide variation of orientation and staining strength."""
        return cls(float(rng.uniform(0, np.pi)), float(rng.uniform(0, np.pi)),
                   float(rng.uniform(0.88, 1.12)), float(rng.uniform(0.85, 1.15)))


def stain_planes(x0_px: int, y0_px: int, class_idx: np.ndarray, mpp: float, nuclei: NucleusTable,
                 fields: Fields, look: Appearance) -> tuple[np.ndarray, np.ndarray]:
    """Haematoxylin and eosin concentration planes of a rectangle.

    Parameters
    ----------
    x0_px, y0_px : int
        Level-0 pixel position of the rectangle's top-left corner.
    class_idx : numpy.ndarray
        ``uint8 (H, W)`` index into KATHER_CLASSES of every pixel.
    mpp : float
        Microns per pixel.
    nuclei : NucleusTable
        Nuclei to draw (those outside the rectangle are ignored).
    fields : Fields
        The slide's random fields.
    look : Appearance
        Slide-wide appearance.
    """
    hh, ww = class_idx.shape
    h = np.empty((hh, ww), dtype=np.float32)
    e = np.empty((hh, ww), dtype=np.float32)
    flat_cls = class_idx.ravel()
    counts = np.bincount(flat_cls, minlength=len(KATHER_CLASSES))
    order = np.argsort(flat_cls, kind="stable").astype(np.int32) if np.count_nonzero(counts) > 1 else None
    hf, ef = h.reshape(-1), e.reshape(-1)
    start = 0
    for ci, n in enumerate(counts):
        if n == 0:
            continue
        code = KATHER_CLASSES[ci]
        angle = look.muscle_angle if code == "MUS" else look.stroma_angle
        flat = np.arange(hh * ww, dtype=np.int32) if order is None else order[start:start + n]
        start += n
        xp = flat % ww + x0_px
        bbox = (int(xp.min()), y0_px + int(flat[0]) // ww, int(xp.max()) + 1,
                y0_px + int(flat[-1]) // ww + 1)
        patch = Patch(xp, flat // ww + y0_px, mpp, fields, bbox)
        hf[flat], ef[flat] = BACKGROUNDS[code](patch, angle)
    draw_nuclei(h, e, x0_px, y0_px, mpp, nuclei, fields)
    h *= np.float32(look.h_scale)
    e *= np.float32(look.e_scale)
    return h, e


def render_rgb(x0_px: int, y0_px: int, class_idx: np.ndarray, mpp: float, nuclei: NucleusTable,
               fields: Fields, look: Appearance) -> np.ndarray:
    """RGB (uint8, H x W x 3) H&E rendering of a rectangle; see :func:`stain_planes`."""
    return od_to_rgb(*stain_planes(x0_px, y0_px, class_idx, mpp, nuclei, fields, look))


def render_class_tile(cls: str, size_px: int = 224, mpp: float = 0.5,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """Render a tile of one Kather class, in exactly the appearance used in synthetic slides.

    Each call draws a new random position, fibre orientation, staining strength and, for TUM and
    STR, a random density of infiltrating lymphocytes.

    Parameters
    ----------
    cls : str
        Kather code (ADI, BACK, DEB, LYM, MUC, MUS, NORM, STR, TUM).
    size_px : int
        Tile side in pixels.
    mpp : float
        Microns per pixel.
    rng : numpy.random.Generator, optional
        Randomness source; a fresh unseeded one when omitted.

    Returns
    -------
    numpy.ndarray
        ``uint8 (size_px, size_px, 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> render_class_tile("TUM", 224, 0.5, np.random.default_rng(0)).shape
    (224, 224, 3)
    """
    if cls not in KATHER_CLASSES:
        raise ValueError(f"unknown Kather class {cls!r}; expected one of {KATHER_CLASSES}")
    rng = np.random.default_rng() if rng is None else rng
    fields = Fields(int(rng.integers(1 << 31)))
    look = Appearance.random(rng)
    x0_px, y0_px = (int(v) for v in rng.integers(0, 200_000, 2))
    ci = KATHER_CLASSES.index(cls)
    class_idx = np.full((size_px, size_px), ci, dtype=np.uint8)
    margin_um = 20.0
    bbox = (x0_px * mpp - margin_um, y0_px * mpp - margin_um,
            (x0_px + size_px) * mpp + margin_um, (y0_px + size_px) * mpp + margin_um)
    densities = NucleusDensities(float(np.exp(rng.uniform(np.log(30), np.log(2500)))),
                                 float(np.exp(rng.uniform(np.log(60), np.log(2500)))))
    nuclei = sample_nuclei(bbox, lambda x, y: np.full(np.shape(x), ci, np.uint8), KATHER_CLASSES,
                           fields, look.angles, densities, rng)
    return render_rgb(x0_px, y0_px, class_idx, mpp, nuclei, fields, look)
