"""Classical backend: real MoNuSeg quality bound, µm parameters transfer across resolutions."""

import numpy as np
from skimage.transform import rescale

from immunodig.nuclei.classical import ClassicalSegmenter, refine_boundaries
from immunodig.nuclei.datasets import read_monuseg
from immunodig.nuclei.evaluation import aji, panoptic_quality
from immunodig.nuclei.segmenter import DEFAULT_BACKEND, Segmenter, get_segmenter
from tests.nuclei.conftest import draw_nuclei

#: Lower bound on the colon image with the shipped defaults (measured 0.528; docs/nuclei.md).
COLON_AJI_BOUND = 0.50


def test_default_backend_on_real_colon_image(monuseg_dir):
    im = next(i for i in read_monuseg(monuseg_dir) if i.image_id.startswith("TCGA-NH"))
    seg = get_segmenter()
    assert isinstance(seg, Segmenter) and seg.name == DEFAULT_BACKEND
    labels = seg.segment(im.rgb, im.mpp)
    assert labels.dtype == np.int32 and labels.shape == im.instances.shape
    assert aji(im.instances, labels) > COLON_AJI_BOUND
    assert panoptic_quality(im.instances, labels).dq > 0.6


def test_parameters_in_um_transfer_across_mpp():
    centres = [(40 + 60 * i, 40 + 60 * j) for i in range(4) for j in range(4)]
    centres += [(300, 300), (322, 300)]  # two touching nuclei to split
    hi = draw_nuclei((360, 360), centres, radius_px=12)  # 0.25 µm/px: 3 µm radius
    lo = (rescale(hi, 0.5, channel_axis=2, anti_aliasing=True) * 255).astype(np.uint8)  # 0.5 µm/px
    seg = ClassicalSegmenter()
    n_hi, n_lo = seg.segment(hi, 0.25).max(), seg.segment(lo, 0.5).max()
    assert n_hi == n_lo == len(centres)


def test_blank_image_has_no_nuclei():
    assert ClassicalSegmenter().segment(np.full((50, 50, 3), 240, np.uint8), 0.5).max() == 0


def test_refinement_redraws_each_outline_at_its_own_level():
    """A pale and a dark nucleus, both under-segmented by 2 px, get their true 10 px radius back."""
    yy, xx = np.mgrid[0:80, 0:140]
    od = np.full((80, 140), 0.01, np.float32)
    truth = np.zeros((80, 140), np.int32)
    for k, (x, level) in enumerate([(35, 0.08), (105, 0.5)], start=1):
        disc = (xx - x) ** 2 + (yy - 40) ** 2 <= 10**2
        od[disc], truth[disc] = level, k
    core = np.zeros_like(truth)
    for k, x in enumerate([35, 105], start=1):
        core[(xx - x) ** 2 + (yy - 40) ** 2 <= 8**2] = k
    refined = refine_boundaries(core, od, mpp=0.25, grow_um=1.0, level=0.3)
    for k in (1, 2):
        inter = ((refined == k) & (truth == k)).sum()
        assert inter / ((refined == k) | (truth == k)).sum() > 0.9
