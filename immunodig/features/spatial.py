"""Spatial organisation: co-localisation, nearest neighbours, Ripley's K/L, map heterogeneity,
tumour-budding proxy.

Tile-map measures need only the tile table; point-pattern measures use the nuclei table, where
*lymphocytes* are nuclei of ``cell_class == "lymphocyte"`` and *tumour nuclei* are
``cell_class == "epithelial"`` nuclei in TUM tiles. All point computations use k-d trees (no
pairwise matrices), so millions of nuclei are fine.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from immunodig.config import BuildConfig
from immunodig.features.composition import TISSUE_CLASSES, class_areas_mm2, ratio
from immunodig.features.margin import Compartments
from immunodig.features.tilemap import TileMap

#: Default quadrat edge for the Morisita-Horn index (``cfg.extra["quadrat_um"]``).
QUADRAT_UM = 500.0
#: Radii (µm) at which Ripley's L is reported.
RIPLEY_RADII_UM: tuple[int, ...] = (20, 50, 100)
#: Proximity radius (µm) of the tumour-lymphocyte contact fraction.
CONTACT_UM = 20
#: Default distance (µm) linking epithelial nuclei into one cluster (``extra["bud_link_um"]``).
BUD_LINK_UM = 20.0
#: A tumour bud has at most this many nuclei (ITBCC 2016: single cells or clusters of up to 4).
BUD_MAX_CELLS = 4
#: Most focal points used for Ripley's K (a seeded random subset beyond it; unbiased).
RIPLEY_MAX_FOCAL = 20_000
#: Sub-tile resolution of the window used for edge correction.
WINDOW_SUBDIVISION = 8


def morisita_horn(a: np.ndarray, b: np.ndarray) -> float:
    """Morisita-Horn overlap of two abundance vectors over the same quadrats.

    ``2 sum(p q) / (sum p^2 + sum q^2)`` with ``p = a / sum a`` and ``q = b / sum b``: 1 for
    identical spatial distributions, 0 for no shared quadrat; NaN when either is all zero.
    """
    sa, sb = float(a.sum()), float(b.sum())
    if sa <= 0 or sb <= 0:
        return float("nan")
    p, q = a / sa, b / sb
    return float(2 * (p * q).sum() / ((p * p).sum() + (q * q).sum()))


def _quadrat_sums(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray,
                  other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``weights`` and ``other`` per quadrat ``(rows, cols)``."""
    if rows.size == 0:
        return np.zeros(0), np.zeros(0)
    key = rows * (int(cols.max()) + 1) + cols
    _, inv = np.unique(key, return_inverse=True)
    return np.bincount(inv, weights=weights), np.bincount(inv, weights=other)


def tile_morisita(tmap: TileMap, quadrat_um: float) -> float:
    """Morisita-Horn index of LYM and TUM tissue area over quadrats of ``quadrat_um``."""
    k = max(1, int(round(quadrat_um / tmap.tile_um)))
    r, c = np.nonzero(tmap.is_class("LYM") | tmap.is_class("TUM"))
    area = tmap.tissue_area_mm2[r, c]
    is_lym = tmap.is_class("LYM")[r, c]
    lym, tum = _quadrat_sums((r + tmap.row0) // k, (c + tmap.col0) // k,
                             area * is_lym, area * ~is_lym)
    return morisita_horn(lym, tum)


def nuclei_morisita(lym_xy: np.ndarray, tum_xy: np.ndarray, quadrat_um: float) -> float:
    """Morisita-Horn index of lymphocyte and tumour-nucleus counts over square quadrats."""
    xy = np.vstack([lym_xy, tum_xy])
    is_lym = np.r_[np.ones(len(lym_xy)), np.zeros(len(tum_xy))]
    cells = np.floor(xy / quadrat_um).astype(np.int64)
    cells -= cells.min(axis=0) if len(cells) else 0
    lym, tum = _quadrat_sums(cells[:, 1], cells[:, 0], is_lym, 1 - is_lym)
    return morisita_horn(lym, tum)


def _window(tmap: TileMap) -> tuple[np.ndarray, float]:
    """Tissue window at sub-tile resolution and its pixel size (µm)."""
    s = WINDOW_SUBDIVISION
    window = np.kron(tmap.classified, np.ones((s, s), bool))
    return window, tmap.tile_um / s


def ripley_l_minus_r(tmap: TileMap, xy: np.ndarray, radii: tuple[int, ...],
                     seed: int = 0) -> dict[int, float]:
    """Besag's ``L(r) - r`` of the points ``xy`` in the tissue window, border-corrected.

    The window is the union of classified tissue tiles; points outside it are dropped. With
    border (reduced-sample) correction, ``K(r) = A / (n m_r) sum_{i: b_i >= r} #{j != i:
    d_ij <= r}`` over the ``m_r`` points at least ``r`` from the window boundary (``b_i``, measured
    on the window at 1/8 tile resolution). ``L(r) - r = sqrt(K / pi) - r`` is 0 under complete
    spatial randomness, positive for clustering. NaN with fewer than 2 points or no point
    ``r`` away from the boundary.
    """
    out = {r: float("nan") for r in radii}
    if tmap.code.size == 0:
        return out
    window, px_um = _window(tmap)
    if not window.any():
        return out
    rows = np.floor(xy[:, 1] / px_um).astype(np.int64) - tmap.row0 * WINDOW_SUBDIVISION
    cols = np.floor(xy[:, 0] / px_um).astype(np.int64) - tmap.col0 * WINDOW_SUBDIVISION
    ok = (rows >= 0) & (rows < window.shape[0]) & (cols >= 0) & (cols < window.shape[1])
    ok[ok] = window[rows[ok], cols[ok]]
    pts, rows, cols = xy[ok], rows[ok], cols[ok]
    n = len(pts)
    if n < 2:
        return out
    area_um2 = float(window.sum()) * px_um**2
    # Distance from each point to the outside of the window: edt of the padded window in pixels,
    # minus half a pixel (point position within its pixel is unknown).
    edt = ndimage.distance_transform_edt(np.pad(window, 1))[1:-1, 1:-1]
    border_um = (edt[rows, cols] - 0.5) * px_um
    tree = cKDTree(pts)
    rng = np.random.default_rng(seed)
    for r in radii:
        focal = np.flatnonzero(border_um >= r)
        if focal.size == 0:
            continue
        if focal.size > RIPLEY_MAX_FOCAL:
            focal = rng.choice(focal, RIPLEY_MAX_FOCAL, replace=False)
        counts = tree.query_ball_point(pts[focal], r, return_length=True) - 1
        k = area_um2 * counts.mean() / (n - 1)
        out[r] = float(np.sqrt(k / np.pi) - r)
    return out


def map_heterogeneity(tmap: TileMap) -> dict[str, float]:
    """Entropy, class mixing and tumour fragmentation of the tile map."""
    areas = class_areas_mm2(tmap)
    a = np.array([areas[c] for c in TISSUE_CLASSES])
    if a.sum() > 0:
        p = a[a > 0] / a.sum()
        entropy = float(-(p * np.log2(p)).sum()) + 0.0
    else:
        entropy = float("nan")
    code, tissue = tmap.code, tmap.classified
    across = tissue[:, 1:] & tissue[:, :-1]
    down = tissue[1:, :] & tissue[:-1, :]
    pairs = int(across.sum() + down.sum())
    differ = int((across & (code[:, 1:] != code[:, :-1])).sum()
                 + (down & (code[1:, :] != code[:-1, :])).sum())
    tum = tmap.is_class("TUM")
    labels, n = ndimage.label(tum, structure=np.ones((3, 3), bool)) if tum.size else (tum, 0)
    frag_area = np.bincount(labels[tum], weights=tmap.tissue_area_mm2[tum], minlength=n + 1)[1:]
    return {
        "tissue_class_entropy_bits": entropy,
        "tissue_mixing_fraction": ratio(differ, pairs),
        "tumour_fragment_count": float(n),
        "tumour_largest_fragment_fraction": ratio(frag_area.max() if n else 0.0, frag_area.sum()),
    }


def bud_link_um(cfg) -> float:
    """Linking distance of tumour-bud nuclei: ``cfg.extra['bud_link_um']``, else :data:`BUD_LINK_UM`."""
    return float(cfg.extra.get("bud_link_um", BUD_LINK_UM))


def tumour_bud_clusters(tmap: TileMap, comp: Compartments, epi_xy: np.ndarray,
                        link_um: float) -> list[np.ndarray]:
    """Tumour-bud candidates: clusters of 1-4 epithelial nuclei in stroma at the margin.

    Epithelial nuclei closer than ``link_um`` are linked into clusters (connected components).
    A cluster is a bud when it has at most :data:`BUD_MAX_CELLS` nuclei, all lying in STR tiles
    of the invasive-margin band. ``tumour_bud_count`` is the number of clusters returned; the
    ``bud`` annotations of export-geojson and ``show`` are drawn around the same nuclei.

    Returns
    -------
    list of numpy.ndarray
        One array per bud: the row indices into ``epi_xy`` of its nuclei.
    """
    n = len(epi_xy)
    if n == 0 or tmap.code.size == 0:
        return []
    pairs = cKDTree(epi_xy).query_pairs(link_um, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    size = np.bincount(label)
    rows, cols, inside = tmap.cells_of(epi_xy[:, 0], epi_xy[:, 1])
    in_front = inside & comp.margin[rows, cols] & tmap.is_class("STR")[rows, cols]
    all_in_front = np.bincount(label, weights=in_front) == size
    is_bud = all_in_front & (size <= BUD_MAX_CELLS)
    members = np.flatnonzero(is_bud[label])
    members = members[np.argsort(label[members], kind="stable")]
    starts = np.flatnonzero(np.diff(label[members], prepend=-1))
    return np.split(members, starts[1:]) if members.size else []


def spatial_features(tmap: TileMap, comp: Compartments, nuclei: dict[str, np.ndarray] | None,
                     cfg: BuildConfig) -> dict[str, float]:
    """Spatial-organisation features; nuclei-based ones only when ``nuclei`` is given.

    Parameters
    ----------
    tmap : TileMap
        The slide's tile map.
    comp : Compartments
        Tumour region and margin of ``tmap``.
    nuclei : dict or None
        ``{"lymphocyte": (N, 2), "tumour": (M, 2), "epithelial": (K, 2)}`` centroids in µm.
    cfg : BuildConfig
        ``extra["quadrat_um"]`` and ``extra["bud_link_um"]`` override the defaults.
    """
    quadrat_um = float(cfg.extra.get("quadrat_um", QUADRAT_UM))
    out = {"morisita_lym_tumour_tiles": tile_morisita(tmap, quadrat_um)}
    out.update(map_heterogeneity(tmap))
    if nuclei is None:
        return out
    lym, tum = nuclei["lymphocyte"], nuclei["tumour"]
    out["morisita_lym_tumour_nuclei"] = nuclei_morisita(lym, tum, quadrat_um)
    contact = f"tumour_nuclei_lym_within_{CONTACT_UM}um_fraction"
    if len(tum) and len(lym):
        dist = cKDTree(lym).query(tum, k=1)[0]
        out["nn_tumour_to_lym_median_um"] = float(np.median(dist))
        out[contact] = float((dist <= CONTACT_UM).mean())
    else:
        out["nn_tumour_to_lym_median_um"] = float("nan")
        out[contact] = 0.0 if len(tum) else float("nan")
    for r, value in ripley_l_minus_r(tmap, lym, RIPLEY_RADII_UM).items():
        out[f"ripley_lr_lym_r{r}_um"] = value
    buds = len(tumour_bud_clusters(tmap, comp, nuclei["epithelial"], bud_link_um(cfg)))
    margin_mm2 = float(tmap.tissue_area_mm2[comp.margin].sum())
    out["tumour_bud_count"] = float(buds)
    out["tumour_bud_density_margin_per_mm2"] = ratio(buds, margin_mm2)
    return out
