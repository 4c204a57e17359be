"""load_encoder: timm ViTs from .pth and .safetensors files, torchvision backbones, TorchScript,
side files, clear errors, the shipped default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from immunodig.embeddings import default_encoder_path, load_encoder
from immunodig.embeddings.metadata import encoder_content_sha256
from immunodig.errors import (
    ModelFileError,
    ModelMetadataError,
    TileSizeError,
    UnsupportedLayoutError,
    WeightsMismatchError,
)

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

#: A two-block ViT-Tiny: the real architecture, small enough for a fast test.
TINY = {"depth": 2}
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


def _tiles(n: int = 5, size: int = 224) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _reference(network, tiles: np.ndarray, mean, std) -> np.ndarray:
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.inference_mode():
        return network.eval()(x).reshape(len(tiles), -1).numpy()


@pytest.fixture(scope="module")
def vit():
    """A ViT-Tiny classifier as a lab would have trained it (head with 7 classes)."""
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=7, **TINY).eval()


@pytest.fixture(scope="module")
def vit_reference(vit):
    headless = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **TINY)
    headless.load_state_dict({k: v for k, v in vit.state_dict().items() if not k.startswith("head.")})
    return _reference(headless, _tiles(), MEAN, STD)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_vit_file_gives_the_in_memory_models_embeddings(tmp_path, vit, vit_reference, suffix):
    path = tmp_path / f"vit{suffix}"
    state = {k: v.contiguous() for k, v in vit.state_dict().items()}
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, path)  # DDP training-loop dict
    enc = load_encoder(path, architecture="vit_tiny_patch16_224", device="cpu", model_kwargs=TINY)
    assert (enc.dim, enc.tile_size_px, enc.input_mpp, enc.layout) == (192, 224, 0.5, "timm")
    assert enc.metadata.mean == pytest.approx(MEAN)  # timm's own data config of the architecture
    out = enc.embed(_tiles())
    assert out.dtype == np.float32 and out.shape == (5, 192)
    np.testing.assert_allclose(out, vit_reference, atol=1e-4)
    assert enc.file_sha256 == encoder_content_sha256(path)


def test_yaml_side_file_gives_architecture_kwargs_and_metadata(tmp_path, vit, vit_reference):
    path = tmp_path / "pytorch_model.bin"
    torch.save(vit.state_dict(), path)
    before = load_encoder(path, "vit_tiny_patch16_224", device="cpu", model_kwargs=TINY).file_sha256
    (tmp_path / "pytorch_model.bin.yaml").write_text(
        "architecture: vit_tiny_patch16_224\nmodel_kwargs: {depth: 2, act_layer: GELU}\n"
        f"mean: {MEAN}\nstd: {STD}\nmpp: 0.25\ntile_size: 224\nname: lab-vit\nlicense: CC-BY-NC-ND-4.0\n")
    enc = load_encoder(path, device="cpu")
    assert (enc.name, enc.input_mpp, enc.metadata.licence) == ("lab-vit", 0.25, "CC-BY-NC-ND-4.0")
    np.testing.assert_allclose(enc.embed(_tiles()), vit_reference, atol=1e-4)
    assert enc.file_sha256 != before  # the side file is part of the encoder's identity


def test_json_side_file_with_cls_and_mean_pooling(tmp_path, vit):
    path = tmp_path / "virchow_like.pth"
    torch.save(vit.state_dict(), path)
    path.with_name(path.name + ".json").write_text(json.dumps(
        {"architecture": "vit_tiny_patch16_224", "model_kwargs": TINY, "pooling": "cls+mean",
         "mean": MEAN, "std": STD}))
    enc = load_encoder(path, device="cpu")
    tiles = _tiles(2)
    x = (torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5
    with torch.inference_mode():
        tokens = vit.forward_features(x)
    expected = torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], 1).numpy()
    assert enc.dim == 384
    np.testing.assert_allclose(enc.embed(tiles), expected, atol=1e-4)


def test_torchvision_backbone_loses_its_head(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=9).eval()
    path = tmp_path / "resnet18.pt"
    torch.save(net.state_dict(), path)
    enc = load_encoder(path, architecture="resnet18", device="cpu")
    net.fc = torch.nn.Identity()
    tiles = _tiles(3)
    assert (enc.dim, enc.layout) == (512, "torchvision")
    np.testing.assert_allclose(enc.embed(tiles), _reference(net, tiles, enc.metadata.mean, enc.metadata.std),
                               atol=1e-4)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch >= 2.9 flags TorchScript as deprecated
def test_torchscript_with_embedded_metadata(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten()).eval()
    path = tmp_path / "enc.ts"
    meta = {"architecture": "torchscript", "mean": MEAN, "std": STD, "tile_size_px": 64, "input_mpp": 1.0}
    torch.jit.save(torch.jit.script(net), str(path), _extra_files={"immunodig.json": json.dumps(meta)})
    enc = load_encoder(path, device="cpu")
    tiles = _tiles(4, 64)
    assert (enc.dim, enc.tile_size_px, enc.input_mpp, enc.layout) == (8, 64, 1.0, "torchscript")
    np.testing.assert_allclose(enc.embed(tiles), _reference(net, tiles, MEAN, STD), atol=1e-5)
    with pytest.raises(TileSizeError, match="64, 64, 3"):
        enc.embed(_tiles(1, 224))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_without_normalisation_is_refused(tmp_path):
    path = tmp_path / "bare.ts"
    torch.jit.save(torch.jit.script(torch.nn.Flatten()), str(path))
    with pytest.raises(ModelMetadataError, match="mean/std"):
        load_encoder(path, device="cpu")


def test_clear_errors(tmp_path, vit):
    path = tmp_path / "vit.pth"
    torch.save(vit.state_dict(), path)
    with pytest.raises(WeightsMismatchError, match="shape mismatch") as info:
        load_encoder(path, architecture="vit_small_patch16_224", device="cpu", model_kwargs=TINY)
    assert "cls_token: file (1, 1, 192) vs network (1, 1, 384)" in info.value.mismatched
    with pytest.raises(WeightsMismatchError, match="unexpected key"):
        load_encoder(path, architecture="vit_tiny_patch16_224", device="cpu", model_kwargs={"depth": 1})
    with pytest.raises(ModelMetadataError, match="no architecture"):
        load_encoder(path, device="cpu")
    with pytest.raises(UnsupportedLayoutError, match="unknown encoder architecture 'uni_v9'"):
        load_encoder(path, architecture="uni_v9", device="cpu")
    with pytest.raises(ModelFileError, match="not found"):
        load_encoder(tmp_path / "absent.pth", architecture="vit_tiny_patch16_224")
    (tmp_path / "junk.pth").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a readable encoder file"):
        load_encoder(tmp_path / "junk.pth", architecture="vit_tiny_patch16_224")


def test_shipped_default_encoder():
    enc = load_encoder(device="cpu")
    assert enc.path == default_encoder_path() and default_encoder_path().stat().st_size < 2_000_000
    assert (enc.dim, enc.tile_size_px, enc.input_mpp) == (64, 224, 0.5)
    assert enc.name == "immunodig-kather9-smallcnn" and "CC BY 4.0" in enc.metadata.licence
    assert enc.metadata.provenance["script"] == "scripts/train_default_encoder.py"
    emb = enc.embed(_tiles(3))
    assert emb.shape == (3, 64) and np.isfinite(emb).all()


def test_shipped_default_separates_tumour_tiles(shared_data: Path):
    """Embeddings of the real tiles: TUM vs rest by logistic regression (the default saw these tiles:
    a check of fit, the out-of-sample figure is in docs/embeddings.md)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from immunodig.tissue.dataset import list_folder_dataset, read_tile

    items = list_folder_dataset(shared_data / "kather-crc-val-he-7k")
    emb = load_encoder(device="cpu").embed(np.stack([read_tile(p, 224) for p, _ in items]))
    y = np.array([c == "TUM" for _, c in items])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    score = cross_val_predict(clf, emb, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                              method="predict_proba")[:, 1]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, score) >= 0.85


def test_token_outputs_without_pooling_are_refused(tmp_path, vit):
    path = tmp_path / "vit.pth"
    torch.save(vit.state_dict(), path)
    with pytest.raises(ModelFileError, match="not one vector per tile"):
        load_encoder(path, "vit_tiny_patch16_224", device="cpu", model_kwargs={**TINY, "global_pool": ""})
