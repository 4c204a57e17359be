"""The TorchScript backend contract, with tiny models the test creates."""

import json

import numpy as np
import pytest
import torch

from immunodig.errors import ConfigError, ModelFileError
from immunodig.nuclei.segmenter import get_segmenter
from tests.nuclei.conftest import draw_nuclei


class DarkIsForeground(torch.nn.Module):
    """Semantic model: 2-channel logits, channel 1 = 'lymphocyte' where the pixel is dark.

    Expects the 'unit' normalisation (x / 255): it fails if given raw 0-255 values.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == 3
        dark = 0.5 - x.mean(dim=1, keepdim=True)  # > 0 on dark pixels when x in [0, 1]
        return torch.cat([-20 * dark, 20 * dark], dim=1)


class ThresholdInstances(torch.nn.Module):
    """Instance model: returns 1 on dark pixels (a single instance id)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.mean(dim=1, keepdim=True) < 0.5).float()


def save(module, path, meta=None):
    scripted = torch.jit.script(module)
    files = {"immunodig.json": json.dumps(meta)} if meta else {}
    torch.jit.save(scripted, str(path), _extra_files=files)
    return path


def test_semantic_output_split_into_instances_and_rescaled(tmp_path):
    path = save(
        DarkIsForeground(), tmp_path / "m.pt", {"input_mpp": 0.5, "normalisation": "unit", "output": "semantic"}
    )
    rgb = draw_nuclei((100, 100), [(25, 25), (70, 60)], radius_px=12)  # at 0.25 µm/px: r = 3 µm
    seg = get_segmenter("torchscript", str(path))
    labels = seg.segment(rgb, mpp=0.25)
    assert labels.shape == (100, 100) and labels.dtype == np.int32
    assert labels.max() == 2
    assert labels[25, 25] > 0 and labels[60, 70] > 0 and labels[0, 0] == 0
    area_um2 = (labels == labels[25, 25]).sum() * 0.25**2
    assert area_um2 == pytest.approx(np.pi * 9, rel=0.15)


def test_instance_output_and_keyword_override(tmp_path):
    path = save(ThresholdInstances(), tmp_path / "i.pt")
    rgb = draw_nuclei((64, 64), [(32, 32)], radius_px=10)
    labels = get_segmenter("torchscript", str(path), output="instance", input_mpp=0.5).segment(rgb, mpp=0.5)
    assert labels.max() == 1 and (labels > 0).sum() == pytest.approx(np.pi * 100, rel=0.1)


def test_contract_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs a model file"):
        get_segmenter("torchscript")
    with pytest.raises(ConfigError, match="unknown settings"):
        get_segmenter("torchscript", "x.pt", colour="blue")
    with pytest.raises(ModelFileError, match="not found"):
        get_segmenter("torchscript", str(tmp_path / "missing.pt")).segment(np.zeros((8, 8, 3), np.uint8), 0.5)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a TorchScript file"):
        get_segmenter("torchscript", str(bad)).segment(np.zeros((8, 8, 3), np.uint8), 0.5)
    with pytest.raises(ConfigError, match="unknown nuclei backend"):
        get_segmenter("stardist")
