"""Macenko stain normalisation (Macenko et al., ISBI 2009).

The stain matrix of an image is estimated from the plane of its two largest optical-density
principal components, taking the robust extreme angles (``alpha`` and ``100 - alpha``
percentiles) as the haematoxylin and eosin directions; concentrations are then rescaled so their
99th percentiles match the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.slides.stain import MACENKO_EOSIN, MACENKO_HAEMATOXYLIN, od_from_rgb, rgb_from_od

_IO = 240.0  # transmitted light intensity (white level)


@dataclass(frozen=True)
class MacenkoReference:
    """Reference stain vectors (rows H, E of OD unit vectors) and 99th-percentile concentrations.

    It is a plain value so it can live in a JSON build config (``to_dict``/``from_dict``).
    """

    stain_matrix: tuple[tuple[float, float, float], tuple[float, float, float]]
    max_concentrations: tuple[float, float]

    def to_dict(self) -> dict:
        """JSON-able representation."""
        return {"stain_matrix": [list(v) for v in self.stain_matrix],
                "max_concentrations": list(self.max_concentrations)}

    @classmethod
    def from_dict(cls, d: dict) -> "MacenkoReference":
        """Inverse of :meth:`to_dict`."""
        sm = d["stain_matrix"]
        return cls((tuple(sm[0]), tuple(sm[1])), tuple(d["max_concentrations"]))  # type: ignore[arg-type]


#: Default reference (Macenko's published H&E vectors and typical maxima).
DEFAULT_REFERENCE = MacenkoReference(
    stain_matrix=(MACENKO_HAEMATOXYLIN, MACENKO_EOSIN),
    max_concentrations=(1.9705, 1.0308),
)


def _od(rgb: np.ndarray) -> np.ndarray:
    return od_from_rgb(rgb.reshape(-1, 3), i0=_IO, dtype=np.float64)


def estimate_stains(
    rgb: np.ndarray, beta: float = 0.15, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate the stain matrix (2x3, rows H then E) and per-pixel concentrations.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(h, w, 3)`` uint8 image with some tissue.
    beta : float
        Optical-density threshold below which pixels are treated as background.
    alpha : float
        Percentile defining the robust extreme angles.

    Raises
    ------
    ValueError
        When fewer than 100 pixels carry stain.
    """
    od = _od(rgb)
    tissue = od[(od > beta).all(axis=1)]
    if tissue.shape[0] < 100:
        raise ValueError("too little stained tissue to estimate stain vectors (<100 pixels)")
    _, eigvecs = np.linalg.eigh(np.cov(tissue.T))
    plane = eigvecs[:, 1:3]
    proj = tissue @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, alpha), np.percentile(phi, 100 - alpha)
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    # Haematoxylin has the larger red-channel OD component.
    stains = np.array([v1, v2]) if v1[0] > v2[0] else np.array([v2, v1])
    stains = stains * np.sign(stains.sum(axis=1, keepdims=True))
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)
    conc, *_ = np.linalg.lstsq(stains.T, od.T, rcond=None)
    return stains, conc


def fit_reference(rgb: np.ndarray) -> MacenkoReference:
    """Derive a reference from a representative, well-stained image."""
    stains, conc = estimate_stains(rgb)
    maxc = np.percentile(conc, 99, axis=1)
    return MacenkoReference(
        (tuple(map(float, stains[0])), tuple(map(float, stains[1]))),  # type: ignore[arg-type]
        (float(maxc[0]), float(maxc[1])),
    )


def normalise(rgb: np.ndarray, reference: MacenkoReference = DEFAULT_REFERENCE) -> np.ndarray:
    """Return ``rgb`` re-stained with the reference's stain vectors and intensities.

    Images with too little tissue to estimate stains are returned unchanged.
    """
    try:
        _, conc = estimate_stains(rgb)
    except ValueError:
        return rgb
    maxc = np.percentile(conc, 99, axis=1)
    conc = conc * (np.asarray(reference.max_concentrations) / np.maximum(maxc, 1e-6))[:, None]
    od = np.asarray(reference.stain_matrix).T @ conc
    out = rgb_from_od(od.T, i0=_IO, offset=0.0)
    return np.clip(out, 0, 255).reshape(rgb.shape).astype(np.uint8)
