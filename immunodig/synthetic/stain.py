"""Beer-Lambert H&E / DAB rendering: stain concentrations (optical densities) to RGB.

The stain vectors are the reference H&E vectors of Macenko et al. (2009) as used by common stain
normalisers (so synthetic tiles look like Macenko-normalised Kather tiles), and the DAB vector of
Ruifrok & Johnston (2001). An RGB value is ``I0 * 10 ** -(c_H * H + c_E * E + c_DAB * DAB)``.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: Optical density per unit haematoxylin concentration (R, G, B).
HAEMATOXYLIN_OD: Final[np.ndarray] = np.array([0.5626, 0.7201, 0.4062], dtype=np.float32)
#: Optical density per unit eosin concentration (R, G, B).
EOSIN_OD: Final[np.ndarray] = np.array([0.2159, 0.8012, 0.5581], dtype=np.float32)
#: Optical density per unit DAB concentration (R, G, B), Ruifrok & Johnston 2001.
DAB_OD: Final[np.ndarray] = np.array([0.2681, 0.5703, 0.7764], dtype=np.float32)
#: Incident light intensity (slightly below 255: glass and scanner white balance).
INCIDENT_INTENSITY: Final[float] = 248.0

_LN10: Final[float] = float(np.log(10.0))


def od_to_rgb(h: np.ndarray, e: np.ndarray, dab: np.ndarray | None = None) -> np.ndarray:
    """Render stain concentrations to an 8-bit RGB image.

    Parameters
    ----------
    h, e : numpy.ndarray
        Haematoxylin and eosin concentrations (optical-density units), same shape ``S``.
    dab : numpy.ndarray, optional
        DAB concentration, same shape; used by the IHC renderer.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``S + (3,)``.
    """
    out = np.empty(h.shape + (3,), dtype=np.uint8)
    for c in range(3):
        od = h * HAEMATOXYLIN_OD[c] + e * EOSIN_OD[c]
        if dab is not None:
            od += dab * DAB_OD[c]
        val = np.exp(od * np.float32(-_LN10))
        val *= np.float32(INCIDENT_INTENSITY)
        val += np.float32(0.5)
        np.clip(val, 0, 255, out=val)
        out[..., c] = val
    return out
