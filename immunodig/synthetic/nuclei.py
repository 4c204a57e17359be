"""Nuclei: per-type shape and stain, placement per tissue class, and vectorised drawing.

A nucleus is an ellipse (cigar for smooth muscle) with a boundary perturbed by smooth noise, a
haematoxylin peak, chromatin grain and, for tumour cells, a darker rim around a paler centre.
Positions are drawn once per slide and stamped chunk by chunk, so a nucleus cut by a chunk border
is drawn seamlessly and the ground-truth table lists exactly what was drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dc_fields

import numpy as np

from immunodig.synthetic import textures as tx
from immunodig.synthetic.fields import TEXTURE_SIZE, Fields, _texture_bank, hash_unit


@dataclass(frozen=True)
class NucleusKind:
    """Appearance of one nucleus type (lengths in µm, stain in OD units)."""

    name: str
    cell_class: str
    major_um: tuple[float, float]  # mean, sd of the long axis
    aspect: tuple[float, float]  # min, max of long/short axis ratio
    h_peak: tuple[float, float]  # mean, sd of haematoxylin concentration
    irregularity: float  # relative boundary perturbation
    chromatin: float  # relative pixel grain inside the nucleus
    rim: float  # extra haematoxylin at the rim (vesicular nuclei)
    blunt: bool = False  # cigar shape with blunt ends


#: Nucleus types, in drawing order (later ones are drawn on top).
KINDS: tuple[NucleusKind, ...] = (
    NucleusKind("debris", "other", (3.2, 0.8), (1.0, 1.7), (1.25, 0.15), 0.30, 0.15, 0.0),
    NucleusKind("adipocyte", "other", (10.0, 1.5), (2.5, 3.5), (0.95, 0.1), 0.05, 0.10, 0.0),
    NucleusKind("mucus_cell", "other", (10.0, 1.5), (1.1, 1.4), (0.75, 0.1), 0.10, 0.20, 0.2),
    NucleusKind("histiocyte", "other", (9.5, 1.0), (1.1, 1.5), (0.70, 0.08), 0.08, 0.20, 0.25),
    NucleusKind("muscle", "fibroblast", (19.0, 3.0), (4.5, 6.5), (0.95, 0.08), 0.04, 0.10, 0.0,
                blunt=True),
    NucleusKind("fibroblast", "fibroblast", (14.0, 2.0), (3.5, 5.0), (1.05, 0.1), 0.06, 0.10, 0.0),
    NucleusKind("normal_epithelial", "epithelial", (9.5, 1.0), (2.0, 2.6), (1.0, 0.08), 0.03, 0.10,
                0.0),
    NucleusKind("tumour", "epithelial", (12.5, 1.5), (1.2, 1.8), (0.68, 0.07), 0.14, 0.15, 0.45),
    NucleusKind("lymphocyte", "lymphocyte", (6.6, 0.4), (1.0, 1.15), (1.50, 0.08), 0.04, 0.05, 0.0),
)
KIND_INDEX: dict[str, int] = {k.name: i for i, k in enumerate(KINDS)}


@dataclass
class NucleusTable:
    """Nuclei as parallel arrays (µm, radians)."""

    x_um: np.ndarray
    y_um: np.ndarray
    major_um: np.ndarray
    minor_um: np.ndarray
    angle: np.ndarray
    kind: np.ndarray  # int8 index into KINDS
    h_peak: np.ndarray
    shape_key: np.ndarray  # int32, offsets the boundary/chromatin noise

    @classmethod
    def empty(cls) -> "NucleusTable":
        z = np.zeros(0, dtype=np.float32)
        return cls(z, z, z, z, z, np.zeros(0, np.int8), z, np.zeros(0, np.int32))

    @classmethod
    def concat(cls, parts: list["NucleusTable"]) -> "NucleusTable":
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts])
                     for f in dc_fields(cls)))

    def __len__(self) -> int:
        return int(self.x_um.size)

    def subset(self, mask: np.ndarray) -> "NucleusTable":
        return NucleusTable(*(getattr(self, f.name)[mask] for f in dc_fields(self)))

    @property
    def diameter_um(self) -> np.ndarray:
        """Equivalent circular diameter (µm)."""
        return np.sqrt(self.major_um * self.minor_um)

    @property
    def cell_class(self) -> np.ndarray:
        """Cell class names (CELL_CLASSES vocabulary)."""
        names = np.array([k.cell_class for k in KINDS])
        return names[self.kind.astype(np.int64)]

    @property
    def kind_name(self) -> np.ndarray:
        names = np.array([k.name for k in KINDS])
        return names[self.kind.astype(np.int64)]


def make_nuclei(kind: str, x_um: np.ndarray, y_um: np.ndarray, rng: np.random.Generator,
                angle: np.ndarray | float | None = None) -> NucleusTable:
    """Nuclei of one kind at given centres with random size, shape and stain."""
    k = KINDS[KIND_INDEX[kind]]
    n = x_um.size
    major = np.maximum(rng.normal(k.major_um[0], k.major_um[1], n), k.major_um[0] * 0.5)
    aspect = rng.uniform(k.aspect[0], k.aspect[1], n)
    if angle is None:
        ang = rng.uniform(0, np.pi, n)
    else:
        ang = np.broadcast_to(np.asarray(angle, dtype=np.float64), (n,)) + rng.normal(0, 0.15, n)
    return NucleusTable(
        x_um.astype(np.float32), y_um.astype(np.float32), major.astype(np.float32),
        (major / aspect).astype(np.float32), ang.astype(np.float32),
        np.full(n, KIND_INDEX[kind], np.int8),
        np.maximum(rng.normal(k.h_peak[0], k.h_peak[1], n), 0.2).astype(np.float32),
        rng.integers(0, 1 << 20, n).astype(np.int32))


def poisson_points(bbox_um: tuple[float, float, float, float], density_per_mm2: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random points with the given density inside ``(x0, y0, x1, y1)`` (µm)."""
    x0, y0, x1, y1 = bbox_um
    n = rng.poisson(max(density_per_mm2, 0.0) * (x1 - x0) * (y1 - y0) * 1e-6)
    return rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)


def grid_points(bbox_um: tuple[float, float, float, float], spacing_um: float, keep: float,
                key: int) -> tuple[np.ndarray, np.ndarray]:
    """Jittered-grid points (position a pure function of the cell and ``key``): packed nuclei
    that rarely overlap."""
    x0, y0, x1, y1 = bbox_um
    gx = np.arange(np.floor(x0 / spacing_um), np.ceil(x1 / spacing_um), dtype=np.int64)
    gy = np.arange(np.floor(y0 / spacing_um), np.ceil(y1 / spacing_um), dtype=np.int64)
    cx, cy = (a.ravel() for a in np.meshgrid(gx, gy))
    sel = hash_unit(cx, cy, key ^ 0x1234567) < keep
    cx, cy = cx[sel], cy[sel]
    x = (cx + 0.2 + 0.6 * hash_unit(cx, cy, key)) * spacing_um
    y = (cy + 0.2 + 0.6 * hash_unit(cx, cy, key ^ 0x7F4A7C15)) * spacing_um
    inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    return x[inside].astype(np.float64), y[inside].astype(np.float64)


ClassAt = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class NucleusDensities:
    """Per-slide cell densities that vary between slides (per mm² of the named region)."""

    til_tumour_per_mm2: float = 400.0
    til_stroma_per_mm2: float = 600.0


def sample_nuclei(bbox_um: tuple[float, float, float, float], class_at: ClassAt,
                  class_codes: tuple[str, ...], fields: Fields, angles: dict[str, float],
                  densities: NucleusDensities, rng: np.random.Generator) -> NucleusTable:
    """Draw every nucleus of every class present in ``bbox_um``.

    Parameters
    ----------
    bbox_um : tuple
        ``(x0, y0, x1, y1)`` in µm.
    class_at : callable
        Maps µm coordinates to Kather codes' indices into ``class_codes``.
    class_codes : tuple of str
        Class vocabulary used by ``class_at`` (KATHER_CLASSES).
    fields : Fields
        The slide's random fields (for compartments).
    angles : dict
        Fibre orientation (radians) of ``"STR"`` and ``"MUS"``.
    densities : NucleusDensities
        The per-slide lymphocyte densities (the planted signal).
    rng : numpy.random.Generator
        Source of randomness for positions and nucleus attributes.
    """
    idx = {c: i for i, c in enumerate(class_codes)}
    parts: list[NucleusTable] = []

    def keep(x, y, code, pred=None):
        m = class_at(x, y) == idx[code]
        if pred is not None and m.any():
            m[m] = pred(x[m], y[m])
        return x[m], y[m]

    def add_poisson(code, kind, density, pred=None, angle=None):
        x, y = keep(*poisson_points(bbox_um, density, rng), code, pred)
        parts.append(make_nuclei(kind, x, y, rng, angle))

    tum_tissue = lambda x, y: tx.tumour_compartment(x, y, fields) != tx.TUM_LUMEN  # noqa: E731
    tum_epi = lambda x, y: tx.tumour_compartment(x, y, fields) == tx.TUM_EPITHELIUM  # noqa: E731
    tum_str = lambda x, y: tx.tumour_compartment(x, y, fields) == tx.TUM_STROMA  # noqa: E731
    lamina = lambda x, y: tx.crypt_compartment(x, y, fields) == tx.NORM_LAMINA  # noqa: E731
    membrane = lambda x, y: tx.adipocyte_membrane(x, y, fields) > 0.6  # noqa: E731

    # tumour: crowded epithelial nuclei on a jittered grid, stroma in the septa, planted TILs
    x, y = keep(*grid_points(bbox_um, 10.5, 0.92, fields.key_int(901)), "TUM", tum_epi)
    parts.append(make_nuclei("tumour", x, y, rng))
    add_poisson("TUM", "fibroblast", 900.0, tum_str, angles["STR"])
    add_poisson("TUM", "lymphocyte", densities.til_tumour_per_mm2, tum_tissue)
    add_poisson("STR", "fibroblast", 850.0, None, angles["STR"])
    add_poisson("STR", "lymphocyte", densities.til_stroma_per_mm2)
    add_poisson("MUS", "muscle", 650.0, None, angles["MUS"])
    x, y = keep(*grid_points(bbox_um, 8.0, 0.80, fields.key_int(902)), "LYM")
    parts.append(make_nuclei("lymphocyte", x, y, rng))
    add_poisson("LYM", "histiocyte", 250.0)
    add_poisson("DEB", "debris", 3000.0)
    add_poisson("MUC", "mucus_cell", 60.0)
    add_poisson("NORM", "lymphocyte", 2200.0, lamina)
    add_poisson("NORM", "fibroblast", 250.0, lamina)
    parts.append(_crypt_nuclei(bbox_um, class_at, idx["NORM"], fields, rng))
    xa, ya = keep(*poisson_points(bbox_um, 90.0, rng), "ADI", membrane)
    if xa.size:
        _, _, dx, dy = fields.voronoi(xa, ya, tx.ADIPOCYTE_SPACING_UM, tx.K_ADI, jitter=0.9)
        parts.append(make_nuclei("adipocyte", xa, ya, rng, np.arctan2(dy, dx) + np.pi / 2))
    return NucleusTable.concat(parts)


def _crypt_nuclei(bbox_um, class_at: ClassAt, norm_idx: int, fields: Fields,
                  rng: np.random.Generator) -> NucleusTable:
    """Basal nuclei in a ring around each normal crypt, long axis radial."""
    from immunodig.synthetic.fields import seed_position

    x0, y0, x1, y1 = bbox_um
    s = tx.CRYPT_SPACING_UM
    gx = np.arange(np.floor(x0 / s) - 1, np.ceil(x1 / s) + 1, dtype=np.int64)
    gy = np.arange(np.floor(y0 / s) - 1, np.ceil(y1 / s) + 1, dtype=np.int64)
    cx, cy = (a.ravel() for a in np.meshgrid(gx, gy))
    sx, sy = seed_position(cx, cy, s, fields.key_int(tx.K_CRYPT), 0.35)
    n_ring = 22
    phi = (np.arange(n_ring) * (2 * np.pi / n_ring))[None, :] + rng.uniform(0, 1, (sx.size, 1))
    rad = 0.80 * tx.CRYPT_RADIUS_UM + rng.normal(0, 1.0, phi.shape)
    x = (sx[:, None] + rad * np.cos(phi)).ravel()
    y = (sy[:, None] + rad * np.sin(phi)).ravel()
    ang = phi.ravel()
    m = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    x, y, ang = x[m], y[m], ang[m]
    m = class_at(x, y) == norm_idx
    if m.any():
        m[m] = tx.crypt_compartment(x[m], y[m], fields) == tx.NORM_EPITHELIUM
    return make_nuclei("normal_epithelial", x[m], y[m], rng, ang[m])


def draw_nuclei(h: np.ndarray, e: np.ndarray, x0_px: int, y0_px: int, mpp: float,
                nuclei: NucleusTable, fields: Fields) -> None:
    """Stamp ``nuclei`` into the stain planes ``h``, ``e`` (chunk at ``(x0_px, y0_px)``), in place.

    Nuclei are stamped kind by kind in :data:`KINDS` order, in batches of similar stamp size.
    """
    hh, ww = h.shape
    for kind_i, kind in enumerate(KINDS):
        sel = np.flatnonzero(nuclei.kind == kind_i)
        if sel.size == 0:
            continue
        cx = nuclei.x_um[sel] / mpp - x0_px
        cy = nuclei.y_um[sel] / mpp - y0_px
        half = np.ceil(nuclei.major_um[sel] / mpp / 2 * (1 + kind.irregularity) + 1.5)
        inside = (cx > -half) & (cx < ww + half) & (cy > -half) & (cy < hh + half)
        half_bin = (np.ceil(half / 3) * 3).astype(np.int64)
        for hb in np.unique(half_bin[inside]):
            m = inside & (half_bin == hb)
            _stamp(h, e, x0_px, y0_px, mpp, nuclei, sel[m], cx[m], cy[m], int(hb), kind)


def _stamp(h: np.ndarray, e: np.ndarray, x0_px: int, y0_px: int, mpp: float,
           nuclei: NucleusTable, sub: np.ndarray, cx: np.ndarray, cy: np.ndarray, half: int,
           kind: NucleusKind) -> None:
    bank, grain = _texture_bank()
    smooth = bank[0]
    mask = TEXTURE_SIZE - 1
    hh, ww = h.shape
    hf, ef = h.reshape(-1), e.reshape(-1)
    offs = np.arange(-half, half + 1)
    rcx, rcy = np.rint(cx).astype(np.int64), np.rint(cy).astype(np.int64)
    ix = rcx[:, None, None] + offs[None, None, :]
    iy = rcy[:, None, None] + offs[None, :, None]
    dx = (ix - cx[:, None, None]).astype(np.float32)
    dy = (iy - cy[:, None, None]).astype(np.float32)
    ang = nuclei.angle[sub][:, None, None]
    ca, sa = np.cos(ang), np.sin(ang)
    a_px = (nuclei.major_um[sub] / mpp / 2)[:, None, None]
    b_px = (nuclei.minor_um[sub] / mpp / 2)[:, None, None]
    u = (dx * ca + dy * sa) / a_px
    v = (dy * ca - dx * sa) / b_px
    u2 = u * u
    r = np.sqrt(u2 * u2 + v * v) if kind.blunt else np.sqrt(u2 + v * v)
    key = nuclei.shape_key[sub][:, None, None]
    if kind.irregularity > 0:
        noise = smooth[(dy.astype(np.int64) + key) & mask,
                       (dx.astype(np.int64) + (key >> 8)) & mask]
        r = r * (1 + np.float32(kind.irregularity) * noise)
    alpha = np.clip((1 - r) * np.minimum(b_px, 4.0) + 0.5, 0, 1)
    ok = (alpha > 0) & (ix >= 0) & (ix < ww) & (iy >= 0) & (iy < hh)
    gx_abs = ix + x0_px
    gy_abs = iy + y0_px
    val = nuclei.h_peak[sub][:, None, None] * (
        1 + np.float32(kind.chromatin) * grain[(gy_abs + 17) & mask, (gx_abs + 91) & mask])
    if kind.rim > 0:
        val = val * (1 - kind.rim * 0.5 + kind.rim * np.clip((r - 0.55) / 0.35, 0, 1))
    flat = (iy * ww + ix)[ok]
    a = alpha[ok].astype(np.float32)
    hf[flat] = hf[flat] * (1 - a) + val[ok].astype(np.float32) * a
    ef[flat] = ef[flat] * (1 - np.float32(0.7) * a) + np.float32(0.05) * a
