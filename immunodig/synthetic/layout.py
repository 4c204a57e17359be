"""Class-map layout of a synthetic section: a colon wall with an invading tumour.

The map is drawn at ``layout_mpp`` (about 2 µm/px, an integer multiple of the slide mpp) from the
slide seed's smooth random fields: an irregular tissue piece on white background; layers of normal
mucosa, submucosal stroma, muscularis propria and subserosal fat; a tumour bed with a ring of
peritumoural stroma (the invasive margin), intratumoural stroma at the requested tumour-stroma
ratio, necrosis in the core, mucus pools, and TLS-like lymphoid aggregates near the margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.synthetic.fields import Fields
from immunodig.vocab import KATHER_CLASSES

C = {c: np.uint8(i) for i, c in enumerate(KATHER_CLASSES)}


@dataclass(frozen=True)
class LayoutParams:
    """Composition knobs of one section.

    Attributes
    ----------
    stroma_fraction : float
        Share of the tumour bed that is stroma (tumour-stroma ratio), 0-0.9.
    necrosis_fraction : float
        Share of the tumour bed that is necrosis / debris (DEB).
    mucin_fraction : float
        Share of the tumour bed that is extracellular mucus (MUC).
    tls_per_mm2 : float
        Expected lymphoid aggregates per mm² of tissue.
    tumour_radius_frac : float
        Tumour bed radius as a fraction of the slide side.
    margin_um : float
        Width of the peritumoural stroma ring (µm).
    tls_radius_um : tuple of float
        Range of an aggregate's radius (µm, uniform).
    """

    stroma_fraction: float = 0.3
    necrosis_fraction: float = 0.05
    mucin_fraction: float = 0.05
    tls_per_mm2: float = 0.4
    tumour_radius_frac: float = 0.24
    margin_um: float = 150.0
    tls_radius_um: tuple[float, float] = (50.0, 130.0)


def make_layout(n_px: int, layout_mpp: float, params: LayoutParams, fields: Fields,
                rng: np.random.Generator) -> np.ndarray:
    """Draw the class map.

    Parameters
    ----------
    n_px : int
        Side of the square map in layout pixels.
    layout_mpp : float
        µm per layout pixel.
    params : LayoutParams
        Composition.
    fields : Fields
        The slide's random fields.
    rng : numpy.random.Generator
        Randomness for shapes and positions.

    Returns
    -------
    numpy.ndarray
        ``uint8 (n_px, n_px)`` indices into KATHER_CLASSES.
    """
    side_um = n_px * layout_mpp
    ax = ((np.arange(n_px, dtype=np.float32) + 0.5) * layout_mpp)
    x = np.broadcast_to(ax[None, :], (n_px, n_px))
    y = np.broadcast_to(ax[:, None], (n_px, n_px))
    c = side_um / 2

    # irregular elliptical tissue piece
    rot = rng.uniform(0, np.pi)
    a_ax, b_ax = rng.uniform(0.36, 0.46, 2) * side_um
    xr = (x - c) * np.cos(rot) + (y - c) * np.sin(rot)
    yr = (y - c) * np.cos(rot) - (x - c) * np.sin(rot)
    rho = np.sqrt((xr / a_ax) ** 2 + (yr / b_ax) ** 2) + 0.09 * fields.smooth(
        x, y, side_um / 7, 101)
    tissue = rho < 1.0

    # wall layers along a random direction: mucosa -> submucosa -> muscle -> fat
    phi = rng.uniform(0, 2 * np.pi)
    dx, dy = np.cos(phi), np.sin(phi)
    t = ((x - c) * dx + (y - c) * dy) / (0.45 * side_um) + 0.12 * fields.smooth(
        x, y, side_um / 5, 102)
    cm = np.full((n_px, n_px), C["BACK"], dtype=np.uint8)
    cm[tissue] = C["STR"]
    cm[tissue & (t < -0.5)] = C["NORM"]
    cm[tissue & (t >= -0.12) & (t < 0.3)] = C["MUS"]
    cm[tissue & (t >= 0.3)] = C["ADI"]

    # tumour bed near the mucosal side, invading the wall
    perp = rng.uniform(-0.1, 0.1) * side_um
    tcx = c - 0.12 * side_um * dx - perp * dy
    tcy = c - 0.12 * side_um * dy + perp * dx
    radius = params.tumour_radius_frac * side_um
    rho_t = np.hypot(x - tcx, y - tcy) / radius + 0.15 * fields.smooth(x, y, side_um / 9, 103)
    ring = tissue & (rho_t >= 1.0) & (rho_t < 1.0 + params.margin_um / radius)
    bed = tissue & (rho_t < 1.0)
    cm[ring] = C["STR"]
    cm[bed] = C["TUM"]
    if bed.any():
        _fill_fraction(cm, bed, fields.smooth(x, y, 110.0, 104), params.stroma_fraction, "STR")
        core = bed & (rho_t < 0.75) & (cm == C["TUM"])
        _fill_fraction(cm, core, fields.smooth(x, y, 120.0, 105),
                       params.necrosis_fraction * bed.sum() / max(core.sum(), 1), "DEB")
        rim = bed & (rho_t >= 0.35) & (cm == C["TUM"])
        _fill_fraction(cm, rim, fields.smooth(x, y, 90.0, 106),
                       params.mucin_fraction * bed.sum() / max(rim.sum(), 1), "MUC")

    # TLS-like lymphoid aggregates, centred in the margin ring or submucosal stroma
    tissue_mm2 = tissue.sum() * layout_mpp ** 2 * 1e-6
    n_tls = rng.poisson(params.tls_per_mm2 * tissue_mm2)
    near = ring | (tissue & ~bed & (cm == C["STR"]))
    cand = np.flatnonzero(near.ravel())
    if n_tls and cand.size:
        for flat in rng.choice(cand, size=min(n_tls, cand.size), replace=False):
            _blob(cm, tissue, flat // n_px, flat % n_px, rng.uniform(*params.tls_radius_um) / layout_mpp,
                  fields, layout_mpp, rng)
    return cm


def _fill_fraction(cm: np.ndarray, region: np.ndarray, field: np.ndarray, fraction: float,
                   code: str) -> None:
    """Assign ``code`` to the top ``fraction`` of ``region`` ranked by ``field`` (in place)."""
    fraction = float(np.clip(fraction, 0.0, 1.0))
    if fraction <= 0 or not region.any():
        return
    vals = field[region]
    thr = np.quantile(vals, 1.0 - fraction)
    cm[region & (field > thr)] = C[code]


def _blob(cm: np.ndarray, tissue: np.ndarray, cy: int, cx: int, r_px: float, fields: Fields,
          layout_mpp: float, rng: np.random.Generator) -> None:
    """Paint an irregular round lymphoid aggregate (LYM) of radius ``r_px``."""
    n = cm.shape[0]
    half = int(np.ceil(r_px * 1.4)) + 1
    y0, y1 = max(cy - half, 0), min(cy + half + 1, n)
    x0, x1 = max(cx - half, 0), min(cx + half + 1, n)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    noise = fields.smooth((xx * layout_mpp).astype(np.float32), (yy * layout_mpp).astype(
        np.float32), 30.0, 107)
    inside = np.hypot(yy - cy, xx - cx) / r_px + 0.12 * noise < 1.0
    sub = cm[y0:y1, x0:x1]
    sub[inside & tissue[y0:y1, x0:x1]] = C["LYM"]
