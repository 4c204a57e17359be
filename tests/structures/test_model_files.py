"""The runner executes immunodig checkpoints, TorchScript files and state dicts with a side file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from immunodig.errors import ModelFileError, ModelMetadataError, WeightsMismatchError
from immunodig.structures.inference import StructureSegmenter
from immunodig.structures.model_file import load_segmenter, save_segmenter
from immunodig.structures.networks import build_network
from immunodig.structures.training import IMAGENET_MEAN, IMAGENET_STD
from immunodig.tissue.checkpoint import ModelMetadata, save_torchscript

DECODER = [16, 16, 8, 8, 8]


def _meta(**kw):
    base = dict(architecture="unet", class_names=["background", "lymphocyte"], input_mpp=0.5, tile_size_px=64,
                mean=IMAGENET_MEAN, std=IMAGENET_STD, extra={"encoder": "resnet18", "decoder_channels": DECODER})
    return ModelMetadata(**{**base, **kw})


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_network("unet", "resnet18", 2, DECODER).eval()


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)


def test_checkpoint_round_trip_gives_the_same_probabilities(tmp_path, net, image):
    path = save_segmenter(tmp_path / "m.pt", _meta(), net.state_dict())
    seg = StructureSegmenter(path)
    ref = StructureSegmenter(load_segmenter(path)).probabilities(image)
    assert seg.classes == ["lymphocyte"]
    assert ref.shape == (2, 80, 100) and np.allclose(ref.sum(0), 1, atol=1e-5)
    with torch.inference_mode():  # the whole image in one pass agrees with the stitched tiles
        x = (torch.from_numpy(image).float() / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
        x = torch.nn.functional.pad(x.permute(2, 0, 1)[None], (0, 28, 0, 16), mode="reflect")
        whole = torch.softmax(net(x), 1)[0, :, :80, :100].numpy()
    assert np.abs(whole - ref).mean() < 0.05


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_with_embedded_metadata(tmp_path, net, image):
    scripted = torch.jit.trace(net, torch.zeros(1, 3, 64, 64))
    path = save_torchscript(tmp_path / "lab.pt", scripted, _meta(architecture="torchscript",
                                                                  extra={"instances": "watershed"}))
    loaded = load_segmenter(path)
    assert loaded.container == "torchscript"
    ref = StructureSegmenter(save_segmenter(tmp_path / "m.pt", _meta(), net.state_dict()))
    got = StructureSegmenter(loaded)
    np.testing.assert_allclose(got.probabilities(image), ref.probabilities(image), atol=1e-4)
    inst = got.segment(image, mpp=0.25)  # input at another mpp: resampled there and back
    assert inst.shape == image.shape[:2] and inst.dtype == np.int32


def test_state_dict_with_side_file(tmp_path, net, image):
    path = tmp_path / "lab_weights.pth"
    torch.save({"model": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    with pytest.raises(ModelMetadataError, match="state dict without metadata"):
        load_segmenter(path)
    (tmp_path / "lab_weights.pth.json").write_text(json.dumps(_meta().to_dict()))
    got = StructureSegmenter(path).probabilities(image)
    ref = StructureSegmenter(save_segmenter(tmp_path / "m.pt", _meta(), net.state_dict())).probabilities(image)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    (tmp_path / "lab_weights.pth.json").write_text(json.dumps(_meta(extra={"encoder": "resnet34"}).to_dict()))
    with pytest.raises(WeightsMismatchError, match="do not fit unet/resnet34"):
        load_segmenter(path)


def test_single_sigmoid_channel_and_bad_metadata(tmp_path, image):
    torch.manual_seed(0)
    one = build_network("unet", "resnet18", 1, DECODER)
    path = save_segmenter(tmp_path / "one.pt", _meta(class_names=["gland"]), one.state_dict())
    prob = StructureSegmenter(path).probabilities(image)
    assert prob.shape == (2, 80, 100) and np.allclose(prob.sum(0), 1)
    with pytest.raises(ModelMetadataError, match="lack a 'background' channel"):
        save_segmenter(tmp_path / "x.pt", _meta(class_names=["gland", "tls"]), one.state_dict())
    with pytest.raises(ModelFileError, match="not found"):
        load_segmenter(tmp_path / "missing.pt")
