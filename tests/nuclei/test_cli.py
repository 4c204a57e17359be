"""The nuclei commands: JSON keys on tiny folders laid out like the real datasets."""

import json

import numpy as np
import scipy.io
import tifffile
from skimage.io import imsave
from typer.testing import CliRunner

from immunodig.cli.app import app
from immunodig.nuclei.cellnet_classifier import CellNetClassifier
from immunodig.nuclei.datasets import read_crchistophenotypes
from tests.nuclei.conftest import draw_nuclei

runner = CliRunner()


def disc_xml(centres, r):
    regions = []
    for i, (x, y) in enumerate(centres, 1):
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        verts = "".join(f'<Vertex X="{x + r * np.cos(a):.1f}" Y="{y + r * np.sin(a):.1f}"/>' for a in t)
        regions.append(f'<Region Id="{i}"><Vertices>{verts}</Vertices></Region>')
    body = "".join(regions)
    return f'<Annotations MicronsPerPixel="0.25"><Annotation><Regions>{body}</Regions></Annotation></Annotations>'


def test_eval_nuclei_json(tmp_path):
    centres = [(30, 30), (90, 40), (60, 100)]
    tifffile.imwrite(tmp_path / "a.tif", draw_nuclei((128, 128), centres, radius_px=14))
    (tmp_path / "a.xml").write_text(disc_xml(centres, 14))
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["eval-nuclei", str(tmp_path), "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {"aji", "pq", "dice", "per_image"} <= set(data)
    assert {"aji", "pq", "dice"} <= set(data["per_image"][0])
    assert data["aji"] > 0.8  # clean discs are easy


def crc_folder(tmp_path):
    """A one-image folder laid out like CRCHistoPhenotypes (two inflammatory, one unlabelled nucleus)."""
    d = tmp_path / "data" / "img1"
    d.mkdir(parents=True)
    pts = np.array([[10.0, 10.0], [30.0, 12.0], [20.0, 30.0]])
    imsave(d / "img1.bmp", draw_nuclei((40, 40), [tuple(p - 1) for p in pts], radius_px=4), check_contrast=False)
    scipy.io.savemat(d / "img1_detection.mat", {"detection": pts})
    scipy.io.savemat(d / "img1_inflammatory.mat", {"detection": pts[:2]})
    for c in ("epithelial", "fibroblast", "others"):
        scipy.io.savemat(d / f"img1_{c}.mat", {"detection": np.zeros((0, 2))})
    return tmp_path / "data"


def test_eval_lymphocytes_json(tmp_path):
    crc_folder(tmp_path)
    model = CellNetClassifier(width=4).fit(
        read_crchistophenotypes(tmp_path / "data"), steps=2, batch_size=2, crop_px=32
    )
    model.save(tmp_path / "m.pt")
    out = tmp_path / "l.json"
    res = runner.invoke(
        app, ["eval-lymphocytes", str(tmp_path / "data"), "--model", str(tmp_path / "m.pt"), "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {"precision", "recall", "f1", "confusion", "match_radius_um"} <= set(data)
    assert data["match_radius_um"] == 6.0
    assert data["tp"] + data["fn"] == 2  # two annotated inflammatory cells


def test_train_cell_classifier_patch_kind(tmp_path):
    from immunodig.nuclei.cell_classifier import load_cell_classifier

    data = crc_folder(tmp_path)
    bad = runner.invoke(app, ["train-cell-classifier", str(data), "--out", str(tmp_path / "m.pkl")])
    assert bad.exit_code != 0 and "write a .pt file" in f"{bad.output}{bad.exception}"
    res = runner.invoke(
        app,
        [
            "train-cell-classifier",
            str(data),
            "--out",
            str(tmp_path / "m.pt"),
            "--cnn-models",
            "1",
            "--cnn-epochs",
            "2",
            "--licence",
            "test data",
        ],
    )
    assert res.exit_code == 0, res.output
    model = load_cell_classifier(tmp_path / "m.pt")
    assert (
        len(model.cnn_states_) == 1 and model.gbm_ is None and model.metadata_["training_data_licence"] == "test data"
    )
