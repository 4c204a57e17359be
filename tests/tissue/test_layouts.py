"""Foreign checkpoint layouts: each is saved the way its library saves it, loaded through
``load_tissue_classifier`` and checked against a forward pass of the original module."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from immunodig.errors import ModelMetadataError, UnsupportedLayoutError, WeightsMismatchError
from immunodig.tissue.classifier import load_tissue_classifier
from immunodig.tissue.describe import TIATOOLBOX_STD, describe_model
from immunodig.vocab import KATHER_CLASSES

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning",
                                        "ignore::DeprecationWarning", "ignore::UserWarning")

TILE = 64
MEAN, STD = [0.70, 0.55, 0.70], [0.15, 0.20, 0.15]
TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def _seeded():
    """Every test builds its random networks from the same seed."""
    torch.manual_seed(0)


def _tiles(n: int = 4, size: int = TILE, seed: int = 0) -> np.ndarray:
    """Random tiles that differ in colour, contrast and texture (so outputs differ per tile)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(30, 225, (n, 1, 1, 3))
    amp = rng.uniform(5, 80, (n, 1, 1, 1))
    yy = np.linspace(0, rng.uniform(2, 12), size)[:, None, None]
    waves = np.sin(yy + rng.uniform(0, 6, (n, 1, 1, 1)) * np.arange(3)) * amp
    noise = rng.normal(0, 1, (n, size, size, 3)) * amp
    return np.clip(base + waves + noise, 0, 255).astype(np.uint8)


def _normalised(tiles: np.ndarray, mean=MEAN, std=STD):
    """The documented normalisation: RGB / 255, minus mean, over std, NCHW float32."""
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _trained_like(net, inputs):
    """Random weights plus BatchNorm statistics of ``inputs`` (as after training), in eval mode,
    with the last linear layer scaled so that logits vary by about 1 between tiles."""
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # running statistics = those of the calibration batch
    net.train()
    with torch.no_grad():
        net(inputs)
    net.eval()
    head = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    seen = []
    hook = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    with torch.no_grad():
        net(inputs)
        hook.remove()
        f = seen[0]
        spread = f.std(0).clamp(min=float(f.std(0).mean()))  # near-constant features are not amplified
        w = torch.randn(head.out_features, head.in_features) / spread / head.in_features ** 0.5
        head.weight.copy_(w)
        head.bias.copy_(-w @ f.mean(0))
    return net


def _check_equal(got: np.ndarray, ref: np.ndarray, label: str) -> float:
    """Max abs difference below the tolerance, on probabilities that are not degenerate."""
    assert got.shape == ref.shape
    diff = float(np.abs(got - ref).max())
    print(f"max abs difference {label}: {diff:.2e}")
    assert diff < TOLERANCE, label
    assert ref.max(axis=1).min() < 0.999 and ref.std(axis=0).max() > 1e-3, "degenerate reference"
    return diff


def _side(path, **meta) -> None:
    base = {"class_names": list(KATHER_CLASSES), "input_mpp": 0.5, "tile_size_px": TILE,
            "mean": MEAN, "std": STD}
    path.with_name(path.name + ".json").write_text(json.dumps({**base, **meta}))


# -- TIAToolbox CNNModel, written here as TIAToolbox defines it ------------------------------------
def _tia_feat_extract(backbone: str):
    """``tiatoolbox.models.architecture.vanilla._get_architecture(backbone)``."""
    import torchvision.models as tm

    creator = getattr(tm, backbone)
    if backbone in ("inception_v3", "googlenet"):
        model = creator(weights=None, aux_logits=False, num_classes=1000)
        return nn.Sequential(*list(model.children())[:-3])
    model = creator(weights=None)
    if "resnet" in backbone or "resnext" in backbone:
        return nn.Sequential(*list(model.children())[:-2])
    return model.features


class TiaCNNModel(nn.Module):
    """``tiatoolbox.models.architecture.vanilla.CNNModel``."""

    def __init__(self, backbone: str, num_classes: int = 1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.feat_extract = _tia_feat_extract(backbone)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        prev_num_ch = self.feat_extract(torch.rand([2, 3, 96, 96])).shape[1]
        self.classifier = nn.Linear(prev_num_ch, num_classes)

    def forward(self, imgs):
        feat = self.feat_extract(imgs)
        gap_feat = torch.flatten(self.pool(feat), 1)
        return torch.softmax(self.classifier(gap_feat), -1)


def _tia_infer(model, tiles: np.ndarray) -> np.ndarray:
    """``CNNModel.infer_batch``: NHWC pixel values as float32, permuted, no normalisation."""
    x = torch.from_numpy(tiles).float().permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        return model(x).numpy()


def _tia_model(backbone: str):
    model = TiaCNNModel(backbone, 9)
    return _trained_like(model, torch.from_numpy(_tiles(8, seed=1)).float().permute(0, 3, 1, 2))


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v2"])  # densenet121: CLI test
def test_tiatoolbox_cnnmodel_state_dict(tmp_path, backbone):
    model = _tia_model(backbone)
    path = tmp_path / f"{backbone}-kather100k.pth"
    torch.save(model.state_dict(), path)  # how TIAToolbox's pretrained weights are stored
    desc = describe_model(path, architecture=backbone, class_names=list(KATHER_CLASSES),
                          input_mpp=0.5, tile_size_px=TILE)
    assert desc.metadata.layout == "tiatoolbox" and desc.metadata.output == "probabilities"
    assert desc.metadata.std == TIATOOLBOX_STD and desc.n_outputs == 9
    clf = load_tissue_classifier(path)
    tiles = _tiles()
    _check_equal(clf.predict_proba(tiles), _tia_infer(model, tiles), f"tiatoolbox {backbone}")


def test_issue_side_file_with_tiatoolbox_resnet18(tmp_path):
    """The report of the issue: the documented side file next to a CNNModel state dict."""
    model = _tia_model("resnet18")
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    (tmp_path / "weights.json").write_text(json.dumps(
        {"architecture": "resnet18", "class_names": list(KATHER_CLASSES), "input_mpp": 0.5,
         "tile_size_px": TILE, "mean": [0, 0, 0], "std": [1 / 255] * 3}))
    clf = load_tissue_classifier(path)
    assert clf.metadata.layout == "tiatoolbox"
    tiles = _tiles()
    _check_equal(clf.predict_proba(tiles), _tia_infer(model, tiles), "tiatoolbox side file")


def _trunk_shapes_match(backbones) -> None:
    """immunodig's rebuilt CNNModel has TIAToolbox's keys and shapes (built on the meta device)."""
    from immunodig.tissue.tiatoolbox_net import TIAToolboxCNN

    for backbone in backbones:
        with torch.device("meta"):
            ours = {k: tuple(v.shape) for k, v in TIAToolboxCNN(backbone, 9).state_dict().items()}
            theirs = {k: tuple(v.shape) for k, v in TiaCNNModel(backbone, 9).state_dict().items()}
        assert ours == theirs, backbone


def test_tiatoolbox_trunks_of_each_rule():
    _trunk_shapes_match(["alexnet", "resnet18", "inception_v3", "googlenet", "densenet121",
                         "mobilenet_v3_small"])


@pytest.mark.slow
def test_tiatoolbox_trunks_of_every_listed_backbone():
    from immunodig.tissue.tiatoolbox_net import TIATOOLBOX_BACKBONES

    _trunk_shapes_match(TIATOOLBOX_BACKBONES)


# -- PyTorch Lightning -------------------------------------------------------------------------
def test_lightning_checkpoint_from_trainer(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")
    import torchvision

    class TileModule(pl.LightningModule):
        def __init__(self, architecture: str = "resnet18", class_names=tuple(KATHER_CLASSES), lr=1e-3):
            super().__init__()
            self.save_hyperparameters()
            self.model = torchvision.models.get_model(architecture, weights=None, num_classes=len(class_names))
            self.criterion = nn.CrossEntropyLoss(weight=torch.linspace(0.5, 1.5, len(class_names)))

        def training_step(self, batch, _):
            x, y = batch
            return self.criterion(self.model(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    x = _normalised(_tiles(8, seed=2))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.arange(8) % 9), batch_size=4)
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(TileModule(), data)
    path = tmp_path / "epoch=0-step=2.ckpt"
    trainer.save_checkpoint(path)
    module = trainer.lightning_module.eval()
    _side(path, class_names=None)  # architecture and class names come from the hyper-parameters
    side = json.loads(path.with_name(path.name + ".json").read_text())
    path.with_name(path.name + ".json").write_text(json.dumps({k: v for k, v in side.items() if v is not None}))
    clf = load_tissue_classifier(path)
    assert clf.metadata.architecture == "resnet18" and clf.metadata.layout == "torchvision"
    tiles = _tiles()
    with torch.no_grad():
        ref = torch.softmax(module.model(_normalised(tiles)), 1).numpy()
    _check_equal(clf.predict_proba(tiles), ref, "lightning (Trainer.save_checkpoint, model. prefix)")
    desc = describe_model(path, write=False)
    assert desc.container == "lightning" and desc.dropped_keys == ["criterion.weight"]


def test_lightning_layout_net_prefix_and_hyper_parameter_aliases(tmp_path):
    """A Lightning checkpoint (as Lightning writes it) whose module holds a TIAToolbox CNNModel as
    ``self.net``, with the backbone and classes as hyper-parameters ``backbone`` / ``classes``."""
    model = _tia_model("mobilenet_v2")
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.6.6",
                "state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
                "loops": {}, "callbacks": {}, "optimizer_states": [], "lr_schedulers": [],
                "hparams_name": "kwargs",
                "hyper_parameters": {"backbone": "mobilenet_v2", "classes": list(KATHER_CLASSES),
                                     "tile_size": TILE, "mean": [0, 0, 0], "std": [1 / 255] * 3}}, path)
    clf = load_tissue_classifier(path)
    assert clf.metadata.layout == "tiatoolbox"
    tiles = _tiles()
    _check_equal(clf.predict_proba(tiles), _tia_infer(model, tiles), "lightning (net. prefix, tiatoolbox)")


# -- wrapper prefixes ----------------------------------------------------------------------------
@pytest.mark.parametrize("wrapper", ["DataParallel", "compile"])
def test_module_and_compile_prefixes(tmp_path, wrapper):
    import torchvision

    net = _trained_like(torchvision.models.mobilenet_v3_small(num_classes=9), _normalised(_tiles(8, seed=3)))
    wrapped = nn.DataParallel(net) if wrapper == "DataParallel" else torch.compile(net)
    state = wrapped.state_dict()
    prefix = "module." if wrapper == "DataParallel" else "_orig_mod."
    assert all(k.startswith(prefix) for k in state)
    path = tmp_path / "w.pth"
    torch.save({"model_state_dict": state, "epoch": 7}, path)  # a training-loop checkpoint
    _side(path, architecture="mobilenet_v3_small")
    tiles = _tiles()
    with torch.no_grad():
        ref = torch.softmax(net(_normalised(tiles)), 1).numpy()
    _check_equal(load_tissue_classifier(path).predict_proba(tiles), ref, f"torchvision {prefix}")


# -- torchvision classifiers with a replaced head --------------------------------------------------
def test_torchvision_replaced_heads(tmp_path):
    import torchvision

    x = _normalised(_tiles(8, seed=4))
    resnet = torchvision.models.resnet18(weights=None)
    resnet.fc = nn.Sequential(nn.Dropout(0.3), nn.Linear(512, 4))
    effnet = torchvision.models.efficientnet_b0(weights=None)
    effnet.classifier = nn.Linear(1280, 9)
    tiles = _tiles()
    names = ["tumour", "stroma", "lymphocytes", "necrosis"]
    for label, net, classes in (("resnet18 fc=Sequential(Dropout, Linear)", resnet, names),
                                ("efficientnet_b0 classifier=Linear", effnet, list(KATHER_CLASSES))):
        net = _trained_like(net, x)
        arch = label.split()[0]
        path = tmp_path / f"{arch}.pth"
        torch.save(net.state_dict(), path)
        desc = describe_model(path, architecture=arch, class_names=classes, input_mpp=0.5,
                              tile_size_px=TILE, mean=MEAN, std=STD)
        assert desc.metadata.layout == "torchvision" and desc.n_outputs == len(classes)
        with torch.no_grad():
            ref = torch.softmax(net(_normalised(tiles)), 1).numpy()
        got = load_tissue_classifier(path).predict_proba(tiles)
        cols = [KATHER_CLASSES.index(c) for c in ("TUM", "STR", "LYM", "DEB")] if classes == names else slice(None)
        _check_equal(got[:, cols], ref, f"torchvision {label}")


# -- timm ----------------------------------------------------------------------------------------
def test_timm_classifier(tmp_path):
    timm = pytest.importorskip("timm")

    net = _trained_like(timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=9),
                        _normalised(_tiles(8, seed=5)))
    path = tmp_path / "timm.pth"
    torch.save(net.state_dict(), path)
    _side(path, architecture="mobilenetv3_small_050")
    clf = load_tissue_classifier(path)
    assert clf.metadata.layout == "timm"
    tiles = _tiles()
    with torch.no_grad():
        ref = torch.softmax(net(_normalised(tiles)), 1).numpy()
    _check_equal(clf.predict_proba(tiles), ref, "timm mobilenetv3_small_050")


def test_timm_name_shared_with_torchvision(tmp_path):
    """resnet18 exists in both libraries with the same keys; either rebuild gives timm's outputs."""
    timm = pytest.importorskip("timm")

    net = _trained_like(timm.create_model("resnet18", pretrained=False, num_classes=9),
                        _normalised(_tiles(8, seed=6)))
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    tiles = _tiles()
    with torch.no_grad():
        ref = torch.softmax(net(_normalised(tiles)), 1).numpy()
    for layout in (None, "timm"):
        _side(path, architecture="resnet18", layout=layout)
        clf = load_tissue_classifier(path)
        assert clf.metadata.layout == (layout or "torchvision")
        _check_equal(clf.predict_proba(tiles), ref, f"timm resnet18 as {layout or 'detected'}")


# -- TorchScript ---------------------------------------------------------------------------------
def test_torchscript_traced_tiatoolbox_model(tmp_path):
    model = _tia_model("resnet18")
    path = tmp_path / "traced.pt"
    traced = torch.jit.trace(model, torch.rand(1, 3, TILE, TILE) * 255)
    torch.jit.save(traced, str(path))
    desc = describe_model(path, class_names=list(KATHER_CLASSES), tile_size_px=TILE,
                          mean=[0, 0, 0], std=[1 / 255] * 3)
    assert desc.metadata.layout == "torchscript" and desc.metadata.output == "probabilities"
    tiles = _tiles()
    _check_equal(load_tissue_classifier(path).predict_proba(tiles), _tia_infer(model, tiles),
                 "torchscript (traced TIAToolbox resnet18)")


# -- ONNX ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", ["dynamic", "fixed"])
def test_onnx_model(tmp_path, batch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import torchvision

    net = _trained_like(torchvision.models.resnet18(num_classes=9), _normalised(_tiles(8, seed=7)))
    path = tmp_path / "model.onnx"
    dynamic = {"input": {0: "n"}, "logits": {0: "n"}} if batch == "dynamic" else None
    torch.onnx.export(net, (torch.zeros(1, 3, TILE, TILE),), str(path), dynamo=False,
                      input_names=["input"], output_names=["logits"], dynamic_axes=dynamic)
    desc = describe_model(path, class_names=list(KATHER_CLASSES), tile_size_px=TILE, mean=MEAN, std=STD)
    assert desc.metadata.layout == "onnx" and desc.metadata.output == "logits"
    assert desc.input_shape == (("n" if batch == "dynamic" else 1), 3, TILE, TILE)
    clf = load_tissue_classifier(path, device="cuda")  # ONNX stays on the CPU
    assert clf.device == "cpu"
    tiles = _tiles()
    with torch.no_grad():
        ref = torch.softmax(net(_normalised(tiles)), 1).numpy()
    _check_equal(clf.predict_proba(tiles), ref, f"onnx ({batch} batch)")


def test_onnx_embedded_metadata_and_wrong_tile_size(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import torchvision

    net = torchvision.models.mobilenet_v3_small(num_classes=3).eval()
    path = tmp_path / "m.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, TILE, TILE),), str(path), dynamo=False)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "immunodig.json", json.dumps({"class_names": ["TUM", "STR", "LYM"],
                                                           "tile_size_px": TILE})
    onnx.save(proto, str(path))
    assert load_tissue_classifier(path).predict_proba(_tiles(2)).shape == (2, 9)
    _side(path, class_names=["TUM", "STR", "LYM"], tile_size_px=2 * TILE)
    with pytest.raises(Exception, match=r"m.onnx.*tile_size_px=128"):
        load_tissue_classifier(path)


# -- clear errors --------------------------------------------------------------------------------
def test_mismatch_lists_missing_unexpected_and_shapes(tmp_path):
    model = _tia_model("resnet18")
    path = tmp_path / "tia.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(WeightsMismatchError) as err:
        describe_model(path, architecture="resnet34", class_names=list(KATHER_CLASSES), tile_size_px=TILE)
    msg = str(err.value)
    assert "tia.pth" in msg and "do not fit architecture 'resnet34'" in msg and "layout tiatoolbox" in msg
    assert "missing key" in msg and err.value.missing and not err.value.mismatched
    with pytest.raises(WeightsMismatchError) as err:
        describe_model(path, architecture="resnet18", class_names=["TUM", "STR"], tile_size_px=TILE)
    assert "classifier.weight: file (9, 512) vs network (2, 512)" in str(err.value)
    assert "the head classifier.weight has 9 outputs but the metadata names 2" in str(err.value)
    import torchvision

    sd = torchvision.models.resnet18(num_classes=9).state_dict()
    sd["extra.weight"] = torch.zeros(3)
    del sd["layer4.1.bn2.running_var"]
    torch.save(sd, path)
    with pytest.raises(WeightsMismatchError) as err:
        describe_model(path, architecture="resnet18", class_names=list(KATHER_CLASSES), tile_size_px=TILE)
    assert err.value.missing == ["layer4.1.bn2.running_var"] and err.value.unexpected == ["extra.weight"]
    assert "1 missing key (layer4.1.bn2.running_var); 1 unexpected key (extra.weight)" in str(err.value)


def test_describe_model_errors(tmp_path):
    model = _tia_model("resnet18")
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(ModelMetadataError, match=r"w.pth.*lacks \['architecture'\]"):
        describe_model(path, class_names=list(KATHER_CLASSES))
    with pytest.raises(ModelMetadataError, match="w.pth: a state dict without metadata.*describe-model"):
        load_tissue_classifier(path)
    with pytest.raises(ModelMetadataError, match="w.pth: metadata layout='keras'"):
        describe_model(path, architecture="resnet18", class_names=list(KATHER_CLASSES), layout="keras")
    with pytest.raises(UnsupportedLayoutError, match="w.pth: TIAToolbox CNNModel backbone 'resnet_custom'"):
        describe_model(path, architecture="resnet_custom", class_names=list(KATHER_CLASSES))


def test_side_file_edit_changes_the_content_hash(tmp_path):
    model = _tia_model("mobilenet_v3_small")
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    describe_model(path, architecture="mobilenet_v3_small", class_names=list(KATHER_CLASSES), tile_size_px=TILE)
    first = load_tissue_classifier(path).file_sha256
    describe_model(path, mean=[0.1, 0.1, 0.1], std=[0.2, 0.2, 0.2])  # the rest from the side file
    again = load_tissue_classifier(path)
    assert again.metadata.mean == [0.1, 0.1, 0.1] and again.file_sha256 != first


def test_describe_model_cli(tmp_path):
    from typer.testing import CliRunner

    from immunodig.cli.app import app

    model = _tia_model("densenet121")
    path = tmp_path / "tia_densenet.pth"
    torch.save(model.state_dict(), path)
    classes = ",".join(KATHER_CLASSES)
    res = CliRunner().invoke(app, ["describe-model", str(path), "--architecture", "densenet121",
                                   "--classes", classes, "--mpp", "0.5", "--tile-size", str(TILE),
                                   "--mean", "0,0,0", "--std", ",".join([str(1 / 255)] * 3)])
    assert res.exit_code == 0, res.output
    assert "layout tiatoolbox" in res.output and "outputs: 9 (probabilities)" in res.output
    assert f"('N', 3, {TILE}, {TILE})" in res.output and "wrote" in res.output
    side = json.loads((tmp_path / "tia_densenet.pth.json").read_text())
    assert side["layout"] == "tiatoolbox" and side["architecture"] == "densenet121"
    tiles = _tiles()
    _check_equal(load_tissue_classifier(path).predict_proba(tiles), _tia_infer(model, tiles),
                 "tiatoolbox densenet121 via describe-model CLI")
    res = CliRunner().invoke(app, ["describe-model", str(path), "--mean", "a,b,c"])
    assert res.exit_code != 0 and "--mean 'a,b,c'" in str(res.exception)
