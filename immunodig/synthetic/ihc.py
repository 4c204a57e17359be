"""CD3 immunohistochemistry rendering: haematoxylin counterstain with DAB-brown T cells.

A CD3 slide is a serial section of the patient's H&E slide: same layout and same nuclei (so its
lymphocytes are exactly the H&E truth's lymphocytes), eosin is absent, haematoxylin is a lighter
counterstain, and each lymphocyte carries a DAB-brown membrane/cytoplasm rim slightly larger than
its nucleus.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from immunodig.synthetic.fields import Fields
from immunodig.synthetic.nuclei import KIND_INDEX, NucleusTable, draw_nuclei
from immunodig.synthetic.render import Appearance, stain_planes
from immunodig.synthetic.stain import od_to_rgb

COUNTERSTAIN_SCALE = 0.6
RESIDUAL_EOSIN = 0.08
DAB_CELL_SCALE = 1.35


def cd3_cells(nuclei: NucleusTable) -> NucleusTable:
    """DAB footprints (enlarged discs) of the lymphocytes among ``nuclei``."""
    lym = nuclei.subset(nuclei.kind == KIND_INDEX["lymphocyte"])
    rng = np.random.default_rng(len(lym))
    return replace(lym, major_um=lym.major_um * np.float32(DAB_CELL_SCALE),
                   minor_um=lym.minor_um * np.float32(DAB_CELL_SCALE),
                   h_peak=rng.uniform(0.45, 0.75, len(lym)).astype(np.float32))


def render_cd3_rgb(x0_px: int, y0_px: int, class_idx: np.ndarray, mpp: float,
                   nuclei: NucleusTable, dab_cells: NucleusTable, fields: Fields,
                   look: Appearance) -> np.ndarray:
    """RGB rendering of a rectangle of the CD3 section (see :func:`render.stain_planes`)."""
    h, e = stain_planes(x0_px, y0_px, class_idx, mpp, nuclei, fields, look)
    h *= np.float32(COUNTERSTAIN_SCALE)
    e *= np.float32(RESIDUAL_EOSIN)
    dab = np.zeros_like(h)
    draw_nuclei(dab, np.zeros_like(h), x0_px, y0_px, mpp, dab_cells, fields)
    return od_to_rgb(h, e, dab)
