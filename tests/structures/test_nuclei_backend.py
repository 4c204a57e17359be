"""A semantic segmentation network (structure-segmenter format) as the nuclei stage's backend:
``--nuclei-backend segmenter --nuclei-model MODEL`` (e.g. the lab's lymphocyte segmenter)."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.config import BuildConfig
from immunodig.errors import ConfigError
from immunodig.nuclei.segmenter import Segmenter, get_segmenter
from tests.structures.helpers import write_darkness_model


def test_a_segmenter_model_is_a_nuclei_backend(tmp_path):
    model = write_darkness_model(tmp_path / "dark.pt", 0.5)
    seg = get_segmenter("segmenter", model=str(model))
    assert isinstance(seg, Segmenter)
    img = np.full((128, 128, 3), 230, np.uint8)
    img[10:20, 10:22] = 40
    img[60:75, 80:90] = 40
    labels = seg.segment(img, mpp=0.5)
    assert labels.dtype == np.int32 and labels.shape == (128, 128)
    assert len(np.unique(labels[labels > 0])) == 2
    assert (labels[10:20, 10:22] > 0).mean() > 0.9 and labels[100:, :50].max() == 0
    assert BuildConfig(nuclei_backend="segmenter", nuclei_model=str(model)).nuclei_backend == "segmenter"


def test_the_segmenter_backend_needs_a_model():
    with pytest.raises(ConfigError, match="needs a model file"):
        get_segmenter("segmenter")
