"""Model files: round trips, foreign formats, class-name mapping and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from immunodig.errors import ModelFileError, TileSizeError, UnknownClassError
from immunodig.tissue.checkpoint import (
    ModelMetadata,
    kather_code,
    kather_index_map,
    load_model_file,
    save_checkpoint,
    save_torchscript,
)
from immunodig.tissue.classifier import load_tissue_classifier
from immunodig.vocab import KATHER_CLASSES

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


def _tiles(n: int = 3, size: int = 224) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _trained_like_cnn(n_classes: int = 9):
    """A smallcnn with non-trivial weights and BatchNorm statistics."""
    from immunodig.tissue.networks import build_network

    torch.manual_seed(0)
    net = build_network("smallcnn", n_classes, {"width": 8})
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 3, 224, 224))
    return net.eval()


def _reference_probs(net, tiles: np.ndarray, mean, std) -> np.ndarray:
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return torch.softmax(net(x), 1).numpy()


def test_state_dict_round_trip_gives_identical_outputs(tmp_path):
    net = _trained_like_cnn()
    meta = ModelMetadata("smallcnn", list(KATHER_CLASSES), mean=[0.5, 0.4, 0.6], std=[0.2, 0.25, 0.3],
                         extra={"width": 8, "downsample": 2}, licence="test")
    path = save_checkpoint(tmp_path / "m.pt", meta, net.state_dict())
    clf = load_tissue_classifier(path)
    tiles = _tiles()
    got = clf.predict_proba(tiles)
    ref = _reference_probs(net, tiles, meta.mean, meta.std)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # loading twice gives the same file hash and the same outputs
    again = load_tissue_classifier(path)
    assert again.file_sha256 == clf.file_sha256 and len(clf.file_sha256) == 64
    np.testing.assert_array_equal(again.predict_proba(tiles), got)
    assert load_model_file(path).metadata.to_dict() == meta.to_dict()


def test_torchscript_round_trip_gives_identical_outputs(tmp_path):
    net = _trained_like_cnn()
    meta = ModelMetadata("smallcnn", list(KATHER_CLASSES), extra={"width": 8})
    sd_clf = load_tissue_classifier(save_checkpoint(tmp_path / "m.pt", meta, net.state_dict()))
    ts_path = save_torchscript(tmp_path / "m.ts", torch.jit.script(net), meta)
    ts_clf = load_tissue_classifier(ts_path)
    assert ts_clf.metadata.architecture == "torchscript"
    tiles = _tiles()
    np.testing.assert_allclose(ts_clf.predict_proba(tiles), sd_clf.predict_proba(tiles), rtol=1e-5, atol=1e-6)


def test_torchscript_with_sidecar_json_and_without_metadata(tmp_path):
    net = _trained_like_cnn(3)
    scripted = torch.jit.script(net)
    bare = tmp_path / "lab_model.pt"
    torch.jit.save(scripted, str(bare))
    with pytest.raises(ModelFileError, match="lab_model.pt.*without metadata"):
        load_tissue_classifier(bare)
    (tmp_path / "lab_model.pt.json").write_text(json.dumps(
        {"class_names": ["Tumor", "stroma", "Lymphocytes"], "input_mpp": 0.5, "tile_size_px": 224}))
    clf = load_tissue_classifier(bare)
    p = clf.predict_proba(_tiles(2))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    present = [KATHER_CLASSES.index(c) for c in ("TUM", "STR", "LYM")]
    assert np.all(p[:, [i for i in range(9) if i not in present]] == 0)


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b0"])
def test_torchvision_architecture_built_offline(tmp_path, arch):
    from immunodig.tissue.networks import build_network

    net = build_network(arch, 9).eval()
    path = save_checkpoint(tmp_path / f"{arch}.pt", ModelMetadata(arch, list(KATHER_CLASSES)),
                           {f"module.{k}": v for k, v in net.state_dict().items()})  # DataParallel prefix
    clf = load_tissue_classifier(path)
    tiles = _tiles(1)
    np.testing.assert_allclose(clf.predict_proba(tiles), _reference_probs(net, tiles, [0, 0, 0], [1, 1, 1]),
                               rtol=1e-4, atol=1e-5)


def test_bare_state_dict_needs_sidecar(tmp_path):
    net = _trained_like_cnn()
    path = tmp_path / "weights.pth"
    torch.save(net.state_dict(), path)
    with pytest.raises(ModelFileError, match="weights.pth.*side-car|weights.pth.*without metadata"):
        load_tissue_classifier(path)
    (tmp_path / "weights.json").write_text(json.dumps(
        {"architecture": "smallcnn", "class_names": list(KATHER_CLASSES), "extra": {"width": 8}}))
    assert load_tissue_classifier(path).predict_proba(_tiles(1)).shape == (1, 9)


def test_wrong_architecture_and_missing_file_errors(tmp_path):
    net = _trained_like_cnn()
    path = save_checkpoint(tmp_path / "m.pt", ModelMetadata("resnet18", list(KATHER_CLASSES)), net.state_dict())
    with pytest.raises(ModelFileError, match="do not fit architecture 'resnet18'"):
        load_tissue_classifier(path)
    path = save_checkpoint(tmp_path / "n.pt", ModelMetadata("vgg_tiny_custom", list(KATHER_CLASSES)), net.state_dict())
    with pytest.raises(ModelFileError, match="unknown architecture 'vgg_tiny_custom'"):
        load_tissue_classifier(path)
    with pytest.raises(ModelFileError, match="not found"):
        load_tissue_classifier(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.pt"):
        load_tissue_classifier(junk)


def test_class_name_synonyms():
    expected = {"tumor": "TUM", "Tumour": "TUM", "stroma": "STR", "lymphocytes": "LYM",
                "background": "BACK", "mucosa": "NORM", "normal": "NORM", "debris": "DEB",
                "necrosis": "DEB", "adipose": "ADI", "fat": "ADI", "muscle": "MUS", "mucus": "MUC",
                "Smooth muscle": "MUS", "ADI": "ADI", "back": "BACK"}
    assert {k: kather_code(k) for k in expected} == expected
    assert kather_code("kidney") is None
    np.testing.assert_array_equal(kather_index_map(["TUM", "ADI"], "x"), [8, 0])


def test_unknown_class_name_error_names_file_and_class(tmp_path):
    net = _trained_like_cnn(3)
    path = save_checkpoint(tmp_path / "lab.pt", ModelMetadata("smallcnn", ["tumor", "glomerulus", "fat"],
                                                              extra={"width": 8}), net.state_dict())
    with pytest.raises(UnknownClassError) as err:
        load_tissue_classifier(path)
    assert "lab.pt" in str(err.value) and "'glomerulus'" in str(err.value) and "output 1" in str(err.value)


def test_synonym_duplicates_are_summed(tmp_path):
    net = _trained_like_cnn(3)
    path = save_checkpoint(tmp_path / "m.pt", ModelMetadata("smallcnn", ["debris", "necrosis", "tumor"],
                                                            extra={"width": 8}), net.state_dict())
    clf = load_tissue_classifier(path)
    tiles = _tiles(2)
    ref = _reference_probs(net, tiles, [0, 0, 0], [1, 1, 1])
    p = clf.predict_proba(tiles)
    np.testing.assert_allclose(p[:, KATHER_CLASSES.index("DEB")], ref[:, 0] + ref[:, 1], rtol=1e-4)
    np.testing.assert_allclose(p[:, KATHER_CLASSES.index("TUM")], ref[:, 2], rtol=1e-4)


def test_wrong_tile_size_is_a_clear_error(tmp_path):
    net = _trained_like_cnn()
    clf = load_tissue_classifier(save_checkpoint(tmp_path / "m.pt", ModelMetadata(
        "smallcnn", list(KATHER_CLASSES), extra={"width": 8}), net.state_dict()))
    with pytest.raises(TileSizeError, match=r"\(N, 224, 224, 3\).*0.5 µm/px.*\(2, 112, 112, 3\)"):
        clf.predict_proba(_tiles(2, 112))
    with pytest.raises(TileSizeError, match="float"):
        clf.predict_proba(_tiles(1).astype(np.float32))


def test_invalid_metadata(tmp_path):
    with pytest.raises(ModelFileError, match="class_names"):
        ModelMetadata.from_dict({"architecture": "smallcnn"}, "f.pt")
    with pytest.raises(ModelFileError, match="input_mpp"):
        ModelMetadata.from_dict({"architecture": "smallcnn", "class_names": ["TUM"], "input_mpp": 0}, "f.pt")
