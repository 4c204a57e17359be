"""Beer-Lambert H&E / DAB rendering: stain concentrations (optical densities) to RGB.

The stain vectors are the reference H&E vectors of Macenko et al. (2009) as used by common stain
normalisers (so synthetic tiles look like Macenko-normalised Kather tiles), and the DAB vector of
Ruifrok & Johnston (2001). An RGB value is ``I0 * 10 ** -(c_H * H + c_E * E + c_DAB * DAB)``
(:func:`immunodig.slides.stain.rgb_from_od` on the natural-log OD).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from immunodig.slides.stain import MACENKO_EOSIN, MACENKO_HAEMATOXYLIN, RUIFROK_DAB, rgb_from_od

#: Optical density per unit haematoxylin concentration (R, G, B).
HAEMATOXYLIN_OD: Final[np.ndarray] = np.array(MACENKO_HAEMATOXYLIN, dtype=np.float32)
#: Optical density per unit eosin concentration (R, G, B).
EOSIN_OD: Final[np.ndarray] = np.array(MACENKO_EOSIN, dtype=np.float32)
#: Optical density per unit DAB concentration (R, G, B), Ruifrok & Johnston 2001.
DAB_OD: Final[np.ndarray] = np.array(RUIFROK_DAB, dtype=np.float32)
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
        # base-10 OD -> natural-log OD; + 0.5 rounds the uint8 cast
        val = rgb_from_od(od * np.float32(_LN10), i0=INCIDENT_INTENSITY, offset=-0.5)
        np.clip(val, 0, 255, out=val)
        out[..., c] = val
    return out
