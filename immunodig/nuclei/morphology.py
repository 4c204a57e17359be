"""Per-nucleus measurements, vectorised over all nuclei of an instance map.

Columns (units in the names): ``x_px, y_px`` (centroid, pixels of the input image), ``area_um2``,
``perimeter_um``, ``eccentricity``, ``solidity``, ``circularity`` (4πA/P², 1 = disc, clipped to 1),
``h_od_mean``, ``e_od_mean`` (mean haematoxylin / eosin optical density, Ruifrok-Johnston
deconvolution), ``texture_contrast``, ``texture_homogeneity`` (grey-level co-occurrence matrix of
the nucleus, 16 grey levels, offsets 1 px right and down, symmetric; Haralick 1973).
"""

from __future__ import annotations

import numpy as np

from immunodig.slides.stain import rgb_to_hed

MORPHOLOGY_COLUMNS: tuple[str, ...] = (
    "x_px",
    "y_px",
    "area_um2",
    "perimeter_um",
    "eccentricity",
    "solidity",
    "circularity",
    "h_od_mean",
    "e_od_mean",
    "texture_contrast",
    "texture_homogeneity",
)
_LEVELS = 16


def measure_nuclei(rgb: np.ndarray, labels: np.ndarray, mpp: float) -> dict[str, np.ndarray]:
    """Measure every instance 1..N of ``labels`` (renumbered sequentially if needed).

    Returns
    -------
    dict of column -> float64 array of length N (row i = label i + 1 after sequential relabelling)
    """
    from skimage.color import rgb2gray
    from skimage.measure import regionprops_table
    from skimage.segmentation import relabel_sequential

    labels = relabel_sequential(np.asarray(labels, dtype=np.int32))[0]
    n = int(labels.max())
    if n == 0:
        return {c: np.zeros(0) for c in MORPHOLOGY_COLUMNS}
    hed = rgb_to_hed(rgb)
    props = regionprops_table(
        labels,
        intensity_image=hed[..., :2],
        properties=("centroid", "area", "perimeter", "eccentricity", "solidity", "intensity_mean"),
    )
    area_um2 = props["area"] * mpp**2
    perim_um = props["perimeter"] * mpp
    circ = np.where(perim_um > 0, 4 * np.pi * area_um2 / np.maximum(perim_um, 1e-9) ** 2, 1.0)
    contrast, homog = _glcm_texture(rgb2gray(rgb), labels, n)
    return {
        "x_px": props["centroid-1"].astype(float),
        "y_px": props["centroid-0"].astype(float),
        "area_um2": area_um2.astype(float),
        "perimeter_um": perim_um.astype(float),
        "eccentricity": props["eccentricity"].astype(float),
        "solidity": props["solidity"].astype(float),
        "circularity": np.clip(circ, 0, 1).astype(float),
        "h_od_mean": props["intensity_mean-0"].astype(float),
        "e_od_mean": props["intensity_mean-1"].astype(float),
        "texture_contrast": contrast,
        "texture_homogeneity": homog,
    }


def instance_centroids(labels: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """Centroids (x, y px, float (N, 2)) of the instances 1..N of ``labels`` (or of ``ids``)."""
    from scipy import ndimage as ndi

    index = np.arange(1, int(labels.max()) + 1) if ids is None else np.asarray(ids, int)
    if not len(index):
        return np.zeros((0, 2))
    return np.asarray(ndi.center_of_mass(np.ones(labels.shape), labels, index), dtype=float).reshape(
        -1, 2
    )[:, ::-1]


def only_instances(labels: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    """``labels`` with every instance not in ``ids`` set to background (``None``: unchanged).

    Instance numbers are kept, so after sequential relabelling row ``i`` is the ``i``-th of the
    ascending ``ids``.
    """
    if ids is None:
        return labels
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[np.asarray(ids, int)] = True
    return np.where(keep[labels], labels, 0).astype(labels.dtype)


def _glcm_texture(grey: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """GLCM contrast and homogeneity per nucleus with a single bincount (no per-nucleus loop)."""
    q = np.minimum((grey * _LEVELS).astype(np.int64), _LEVELS - 1)
    lab_all, i_all, j_all = [], [], []
    for a, b, la, lb in (
        (q[:, :-1], q[:, 1:], labels[:, :-1], labels[:, 1:]),
        (q[:-1, :], q[1:, :], labels[:-1, :], labels[1:, :]),
    ):
        same = (la == lb) & (la > 0)
        lab_all.append(la[same]), i_all.append(a[same]), j_all.append(b[same])
    lab = np.concatenate(lab_all).astype(np.int64)
    i, j = np.concatenate(i_all), np.concatenate(j_all)
    d = np.abs(i - j).astype(float)
    pairs = np.bincount(lab, minlength=n + 1)[1:].astype(float)
    contrast = np.bincount(lab, weights=d**2, minlength=n + 1)[1:]
    homog = np.bincount(lab, weights=1.0 / (1.0 + d), minlength=n + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        # symmetric GLCM: (i, j) and (j, i) counted alike, so the normalised sums are unchanged
        return np.where(pairs > 0, contrast / pairs, np.nan), np.where(pairs > 0, homog / pairs, np.nan)
