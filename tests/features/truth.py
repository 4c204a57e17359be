"""Feature values computed directly from a synthetic slide's ground truth (pixel class map and
drawn nuclei), independently of the tile-grid implementation, and the tile table a perfect
classifier would produce from that class map."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import ndimage
from scipy.spatial.distance import cdist

from immunodig.vocab import KATHER_CLASSES

BACK = KATHER_CLASSES.index("BACK")
TUM = KATHER_CLASSES.index("TUM")
LYM = KATHER_CLASSES.index("LYM")
STR = KATHER_CLASSES.index("STR")


def perfect_tiles(classmap: np.ndarray, px_um: float, tile_um: float,
                  min_tissue_fraction: float = 0.5) -> pl.DataFrame:
    """Tile table of a perfect classifier: majority tissue class of each tile's pixels."""
    k = int(round(tile_um / px_um))
    rows, cols = classmap.shape[0] // k, classmap.shape[1] // k
    blocks = classmap[: rows * k, : cols * k].reshape(rows, k, cols, k).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(rows * cols, k * k)
    counts = np.stack([(blocks == i).sum(1) for i in range(len(KATHER_CLASSES))], 1)
    tissue = counts.sum(1) - counts[:, BACK]
    frac = tissue / (k * k)
    tissue_counts = counts.copy()
    tissue_counts[:, BACK] = 0
    pred = np.argmax(tissue_counts, 1)
    ok = frac >= min_tissue_fraction
    keep = frac > 0
    r, c = np.divmod(np.arange(rows * cols), cols)
    probs = tissue_counts / np.maximum(tissue, 1)[:, None]
    return pl.DataFrame({
        "x_um": (c * tile_um)[keep].astype(float), "y_um": (r * tile_um)[keep].astype(float),
        "tissue_fraction": frac[keep].astype(np.float32),
        "qc_pass": ok[keep],
        "pred_class": pl.Series([KATHER_CLASSES[p] if o else None
                                 for p, o in zip(pred[keep], ok[keep])], dtype=pl.String),
        **{f"prob_{name}": pl.Series(np.where(ok, probs[:, i], np.nan)[keep],
                                     dtype=pl.Float32).fill_nan(None)
           for i, name in enumerate(KATHER_CLASSES)},
    })


def pixel_compartments(classmap: np.ndarray, px_um: float, margin_um: float) -> dict[str, np.ndarray]:
    """Tumour region, margin band and core at pixel resolution (exact Euclidean distances)."""
    tissue = classmap != BACK
    tumour = ndimage.binary_fill_holes(classmap == TUM) & tissue
    host = tissue & ~tumour
    depth = ndimage.distance_transform_edt(~host) * px_um
    reach = ndimage.distance_transform_edt(~tumour) * px_um
    margin = (tumour & (depth <= margin_um)) | (host & (reach <= margin_um))
    return {"tissue": tissue, "tumour": tumour, "margin": margin, "core": tumour & ~margin}


def density_in(mask: np.ndarray, px_um: float, xy_um: np.ndarray) -> float:
    """Points per mm² of ``mask`` (pixel map of edge ``px_um``)."""
    r = np.clip((xy_um[:, 1] // px_um).astype(int), 0, mask.shape[0] - 1)
    c = np.clip((xy_um[:, 0] // px_um).astype(int), 0, mask.shape[1] - 1)
    return float(mask[r, c].sum() / (mask.sum() * (px_um / 1000) ** 2))


def nn_median_brute(a: np.ndarray, b: np.ndarray, chunk: int = 2000) -> float:
    """Median over ``a`` of the distance to the nearest point of ``b`` (brute force)."""
    best = np.concatenate([cdist(a[i:i + chunk], b).min(1) for i in range(0, len(a), chunk)])
    return float(np.median(best))


def ripley_lr_brute(xy: np.ndarray, window: np.ndarray, px_um: float, r: float) -> float:
    """Border-corrected ``L(r) - r`` with all pairwise distances, window at pixel resolution."""
    rows = (xy[:, 1] // px_um).astype(int)
    cols = (xy[:, 0] // px_um).astype(int)
    inside = window[np.clip(rows, 0, window.shape[0] - 1), np.clip(cols, 0, window.shape[1] - 1)]
    pts = xy[inside]
    border = (ndimage.distance_transform_edt(np.pad(window, 1))[1:-1, 1:-1] - 0.5) * px_um
    b = border[(pts[:, 1] // px_um).astype(int), (pts[:, 0] // px_um).astype(int)]
    d = cdist(pts[b >= r], pts)
    counts = (d <= r).sum(1) - 1
    k = window.sum() * px_um**2 * counts.mean() / (len(pts) - 1)
    return float(np.sqrt(k / np.pi) - r)
