"""Fixtures: one small generated slide (1 mm at 0.5 µm/px) shared by the synthetic tests."""

from __future__ import annotations

import pytest

from immunodig.synthetic import LayoutParams, SlideParams, make_slide

SLIDE_SEED = 11
#: Rich in every structure the tests inspect: a large tumour bed with many TILs.
SLIDE_PARAMS = SlideParams(LayoutParams(stroma_fraction=0.25, tls_per_mm2=2.0,
                                        tumour_radius_frac=0.3), til_tumour_per_mm2=900.0)


@pytest.fixture(scope="session")
def small_slide(tmp_path_factory):
    """(path, truth) of a 1 mm H&E slide with ground truth written beside it."""
    d = tmp_path_factory.mktemp("synth")
    truth = make_slide(d / "s.tiff", SLIDE_SEED, slide_mm=1.0, mpp=0.5, params=SLIDE_PARAMS,
                       truth_dir=d / "truth")
    return d / "s.tiff", truth


@pytest.fixture(scope="session")
def small_slide_rgb(small_slide):
    """Level-0 RGB of the small slide as read back by openslide."""
    import numpy as np
    import openslide

    path, truth = small_slide
    with openslide.OpenSlide(str(path)) as s:
        img = s.read_region((0, 0), 0, s.dimensions)
    return np.asarray(img.convert("RGB"))
