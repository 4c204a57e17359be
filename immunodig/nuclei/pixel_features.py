"""Multi-scale per-pixel filter features of H&E (ilastik-style), for the gradient-boosting cell classifier.

Features of the haematoxylin and eosin optical densities (``rgb2hed``) at Gaussian scales given in
µm: smoothed value, scale-normalised Laplacian of Gaussian, gradient magnitude and the two Hessian
eigenvalues (blob / ridge shape: a round lymphocyte gives two strongly negative eigenvalues, a
spindle fibroblast one), plus the raw densities.
"""

from __future__ import annotations

import numpy as np

from immunodig.slides.stain import rgb_to_hed

#: Gaussian scales in µm.
SCALES_UM: tuple[float, ...] = (0.5, 1.0, 2.0, 3.5, 5.0)


def feature_names() -> list[str]:
    """Names of the columns returned by :func:`pixel_features`."""
    names = ["h_od", "e_od"]
    for s in SCALES_UM:
        names += [f"h_gauss_{s}", f"e_gauss_{s}", f"h_log_{s}", f"h_gradmag_{s}", f"h_hess1_{s}", f"h_hess2_{s}"]
    return names


def pixel_features(rgb: np.ndarray, mpp: float) -> np.ndarray:
    """Float32 array (H, W, F) of features (see :func:`feature_names`)."""
    from scipy import ndimage as ndi
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals

    hed = rgb_to_hed(rgb).astype(np.float32)
    h, e = hed[..., 0], hed[..., 1]
    feats = [h, e]
    for s_um in SCALES_UM:
        s = s_um / mpp
        feats.append(ndi.gaussian_filter(h, s))
        feats.append(ndi.gaussian_filter(e, s))
        feats.append(ndi.gaussian_laplace(h, s) * s**2)
        feats.append(ndi.gaussian_gradient_magnitude(h, s) * s)
        hrr, hrc, hcc = hessian_matrix(h, sigma=s, order="rc", use_gaussian_derivatives=False)
        ev = hessian_matrix_eigvals([hrr, hrc, hcc])
        feats.append(ev[0] * s**2)
        feats.append(ev[1] * s**2)
    return np.stack(feats, axis=-1).astype(np.float32)
