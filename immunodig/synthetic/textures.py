"""Per-class tissue appearance between nuclei: haematoxylin and eosin concentrations.

Each Kather class has a background function ``(patch, angle) -> (h, e)`` evaluated on the pixels
of that class in a chunk (a :class:`Patch`; slowly varying fields are sampled on a coarse grid),
and some classes have compartments (tumour glands, normal crypts, fat-cell membranes) that the
nucleus sampler also queries so that nuclei sit where the texture says they should.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from immunodig.synthetic.fields import Fields, Patch

# Field keys (any distinct integers; changing one changes every slide's look).
K_GLAND, K_GLAND2, K_CYTO, K_STROMA, K_STROMA_WARP, K_MUSCLE, K_MUC, K_DEB, K_DEB2 = range(10, 19)
K_LYM, K_ADI, K_CRYPT, K_GRAIN, K_LOOSE, K_BACK = range(19, 25)

#: Tumour compartments returned by :func:`tumour_compartment`.
TUM_STROMA, TUM_EPITHELIUM, TUM_LUMEN = 0, 1, 2
#: Normal-mucosa compartments returned by :func:`crypt_compartment`.
NORM_LAMINA, NORM_EPITHELIUM, NORM_LUMEN = 0, 1, 2

#: Gland-field thresholds of tumour lumen and epithelium (below: septal stroma).
GLAND_LUMEN, GLAND_EPITHELIUM = 1.15, -0.75
#: Spacing of normal crypts and their radius (µm).
CRYPT_SPACING_UM = 80.0
CRYPT_RADIUS_UM = 31.0
CRYPT_LUMEN_UM = 6.0
#: Fat-cell spacing (µm) and membrane half-width (µm).
ADIPOCYTE_SPACING_UM = 70.0
MEMBRANE_UM = 0.5


def _f32(a: float) -> np.float32:
    return np.float32(a)


def _along_across(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = _f32(np.cos(angle)), _f32(np.sin(angle))
    return x * c + y * s, y * c - x * s


def tumour_field(x_um: np.ndarray, y_um: np.ndarray, fields: Fields) -> np.ndarray:
    """Gland field of the tumour: high = lumen, middle = epithelium, low = septal stroma."""
    return fields.smooth(x_um, y_um, 42.0, K_GLAND) + _f32(0.35) * fields.smooth(
        x_um, y_um, 12.0, K_GLAND2)


def tumour_compartment(x_um: np.ndarray, y_um: np.ndarray, fields: Fields) -> np.ndarray:
    """Compartment of tumour points: TUM_STROMA, TUM_EPITHELIUM or TUM_LUMEN (uint8)."""
    f = tumour_field(x_um, y_um, fields)
    return np.where(f > GLAND_LUMEN, TUM_LUMEN,
                    np.where(f > GLAND_EPITHELIUM, TUM_EPITHELIUM, TUM_STROMA)).astype(np.uint8)


def crypt_geometry(x_um: np.ndarray, y_um: np.ndarray, fields: Fields):
    """Voronoi geometry of normal crypts: (d1, d2, dx, dy) in µm."""
    return fields.voronoi(x_um, y_um, CRYPT_SPACING_UM, K_CRYPT, jitter=0.35)


def crypt_compartment(x_um: np.ndarray, y_um: np.ndarray, fields: Fields) -> np.ndarray:
    """Compartment of normal-mucosa points: NORM_LAMINA, NORM_EPITHELIUM or NORM_LUMEN."""
    d1, _, _, _ = crypt_geometry(x_um, y_um, fields)
    return np.where(d1 < CRYPT_LUMEN_UM, NORM_LUMEN,
                    np.where(d1 < CRYPT_RADIUS_UM, NORM_EPITHELIUM, NORM_LAMINA)).astype(np.uint8)


def adipocyte_membrane(x_um: np.ndarray, y_um: np.ndarray, fields: Fields) -> np.ndarray:
    """Membrane opacity in [0, 1] of fat cells (1 on a membrane)."""
    d1, d2, _, _ = fields.voronoi(x_um, y_um, ADIPOCYTE_SPACING_UM, K_ADI, jitter=0.9)
    return membrane_opacity((d2 - d1) * _f32(0.5))


def membrane_opacity(half_gap_um: np.ndarray) -> np.ndarray:
    """Opacity of a fat-cell membrane from the half gap between the two nearest seeds (µm)."""
    return np.clip(_f32(1.0) - (half_gap_um - _f32(MEMBRANE_UM)) / _f32(0.5), 0, 1)


def _stroma(p: Patch, angle: float) -> tuple[np.ndarray, np.ndarray]:
    f = p.f
    x, y = p.um
    warp = _f32(10.0) * p.coarse(lambda gx, gy: f.smooth(gx, gy, 70.0, K_STROMA_WARP), 2.0)
    a, b = _along_across(x, y, angle)
    fibre = f.smooth(a * _f32(0.12), b + warp, 2.5, K_STROMA)
    loose = p.coarse(lambda gx, gy: np.clip(f.smooth(gx, gy, 60.0, K_LOOSE), 0, 1.5), 2.0)
    cyto = p.coarse(lambda gx, gy: f.smooth(gx, gy, 25.0, K_CYTO), 2.0)
    e = _f32(0.31) + _f32(0.065) * fibre + _f32(0.04) * cyto
    e *= _f32(1.0) - _f32(0.3) * loose
    e += _f32(0.025) * p.grain(K_GRAIN)
    h = _f32(0.065) + _f32(0.015) * p.grain(K_GRAIN + 1) + _f32(0.015) * fibre
    return h, e


def _muscle(p: Patch, angle: float):
    f = p.f
    x, y = p.um
    a, b = _along_across(x, y, angle)
    fibre = f.smooth(a * _f32(0.06), b, 3.5, K_MUSCLE)

    def cleft_fn(gx, gy):
        ga, gb = _along_across(gx, gy, angle)
        return np.clip(_f32(1.0) - np.abs(f.smooth(ga * _f32(0.05), gb, 25.0, K_MUSCLE + 50)) * 6,
                       0, 1)

    cleft = p.coarse(cleft_fn, 1.0, linear=True)
    e = _f32(0.55) + _f32(0.06) * fibre + _f32(0.06) * p.coarse(
        lambda gx, gy: f.smooth(gx, gy, 40.0, K_CYTO), 2.0)
    e *= _f32(1.0) - _f32(0.55) * cleft
    e += _f32(0.03) * p.grain(K_GRAIN)
    h = _f32(0.10) + _f32(0.02) * p.grain(K_GRAIN + 1)
    return h, e


def _tumour(p: Patch, angle: float):
    f = p.f
    gland = p.coarse(lambda gx, gy: tumour_field(gx, gy, f), 1.0, linear=True)
    comp = np.where(gland > GLAND_LUMEN, TUM_LUMEN,
                    np.where(gland > GLAND_EPITHELIUM, TUM_EPITHELIUM, TUM_STROMA))
    g = p.grain(K_GRAIN)
    cyto = p.coarse(lambda gx, gy: f.smooth(gx, gy, 4.0, K_CYTO), 1.0, linear=True)
    h = _f32(0.26) + _f32(0.04) * cyto + _f32(0.02) * g
    e = _f32(0.30) + _f32(0.05) * cyto + _f32(0.03) * g
    lum = comp == TUM_LUMEN
    if lum.any():
        q = Patch(p.xp[lum], p.yp[lum], p.mpp, f)
        h[lum] = _f32(0.03) + _f32(0.05) * q.coarse(
            lambda gx, gy: np.clip(f.smooth(gx, gy, 8.0, K_DEB), 0, 2), 1.0, linear=True)
        e[lum] = _f32(0.06) + _f32(0.08) * q.coarse(
            lambda gx, gy: np.clip(f.smooth(gx, gy, 8.0, K_DEB2), 0, 2), 1.0, linear=True)
    sep = comp == TUM_STROMA
    if sep.any():
        h[sep], e[sep] = _stroma(Patch(p.xp[sep], p.yp[sep], p.mpp, f), angle)
    return h, e


def _normal(p: Patch, angle: float):
    f = p.f

    def radius_fn(gx, gy):
        d1, _, _, _ = crypt_geometry(gx, gy, f)
        return d1

    def goblet_fn(gx, gy):
        d1, _, dx, dy = crypt_geometry(gx, gy, f)
        r = d1 / _f32(CRYPT_RADIUS_UM)
        return ((np.cos(np.arctan2(dy, dx) * 9) > 0.1) & (r > 0.32) & (r < 0.72)).astype(
            np.float32)

    d1 = p.coarse(radius_fn, 1.0, linear=True)
    goblet = p.coarse(goblet_fn, 1.0, linear=True) > 0.5
    g = p.grain(K_GRAIN)
    crypt = d1 < CRYPT_RADIUS_UM
    h = np.where(crypt, _f32(0.20), _f32(0.13)) + _f32(0.02) * g
    e = np.where(crypt, _f32(0.26), _f32(0.22)) + _f32(0.03) * g
    h = np.where(goblet, _f32(0.13), h)
    e = np.where(goblet, _f32(0.04), e)
    lumen = d1 < CRYPT_LUMEN_UM
    h = np.where(lumen, _f32(0.03), h)
    e = np.where(lumen, _f32(0.05), e)
    return h, e


def _adipose(p: Patch, angle: float):
    f = p.f

    def gap_fn(gx, gy):
        d1, d2, _, _ = f.voronoi(gx, gy, ADIPOCYTE_SPACING_UM, K_ADI, jitter=0.9)
        return (d2 - d1) * _f32(0.5)

    m = membrane_opacity(p.coarse(gap_fn, 1.5, linear=True))
    g = p.grain(K_GRAIN)
    h = _f32(0.015) + _f32(0.07) * m + _f32(0.004) * g
    e = _f32(0.02) + _f32(0.42) * m + _f32(0.006) * g
    return h, e


def _lymphoid(p: Patch, angle: float):
    f = p.f
    g = p.grain(K_GRAIN)
    h = _f32(0.14) + _f32(0.03) * p.coarse(lambda x, y: f.smooth(x, y, 15.0, K_LYM), 2.0) \
        + _f32(0.02) * g
    e = _f32(0.14) + _f32(0.04) * p.coarse(lambda x, y: f.smooth(x, y, 20.0, K_LYM + 1), 2.0) \
        + _f32(0.02) * g
    return h, e


def _mucus(p: Patch, angle: float):
    f = p.f

    def wisp_fn(gx, gy):
        a, b = _along_across(gx, gy, angle + 0.7)
        return np.clip(f.smooth(a * _f32(0.25), b, 6.0, K_MUC), 0, 3)

    wisp = p.coarse(wisp_fn, 1.0, linear=True)
    broad = p.coarse(lambda x, y: f.smooth(x, y, 40.0, K_MUC + 1), 2.0)
    h = _f32(0.12) + _f32(0.05) * wisp + _f32(0.03) * broad + _f32(0.01) * p.grain(K_GRAIN)
    e = _f32(0.05) + _f32(0.02) * wisp + _f32(0.02) * broad
    return np.maximum(h, _f32(0.02)), np.maximum(e, _f32(0.01))


def _debris(p: Patch, angle: float):
    f = p.f
    e = (_f32(0.40) + _f32(0.12) * p.coarse(lambda x, y: f.smooth(x, y, 5.0, K_DEB), 1.0, True)
         + _f32(0.05) * p.grain(K_GRAIN))
    h = (_f32(0.16) + _f32(0.14) * p.coarse(
        lambda x, y: np.clip(f.smooth(x, y, 9.0, K_DEB2), 0, 2), 1.0, True)
         + _f32(0.04) * p.grain(K_GRAIN + 1))
    return h, np.maximum(e, _f32(0.05))


def _background(p: Patch, angle: float):
    g = p.grain(K_BACK)
    h = _f32(0.010) + _f32(0.003) * g
    e = _f32(0.012) + _f32(0.004) * g
    return h, e


BackgroundFn = Callable[..., tuple[np.ndarray, np.ndarray]]

#: Background (between-nuclei) appearance of each Kather class.
BACKGROUNDS: dict[str, BackgroundFn] = {
    "ADI": _adipose, "BACK": _background, "DEB": _debris, "LYM": _lymphoid, "MUC": _mucus,
    "MUS": _muscle, "NORM": _normal, "STR": _stroma, "TUM": _tumour,
}
