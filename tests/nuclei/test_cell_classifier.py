"""Cell classifiers: the morphology rule and the trained network's save/load round trip."""

import numpy as np
import pytest

from immunodig.errors import ModelFileError, NotFittedError
from immunodig.nuclei.cell_classifier import CRC_LICENCE, CellNetClassifier, RuleCellClassifier, default_model_path, load_cell_classifier
from immunodig.nuclei.datasets import PointImage
from immunodig.vocab import CELL_CLASSES
from tests.nuclei.conftest import draw_nuclei


def test_rule_thresholds():
    morph = {
        "area_um2": np.array([30.0, 30.0, 60.0, 25.0, 5.0]),
        "circularity": np.array([0.9, 0.9, 0.85, 0.5, 0.9]),
        "eccentricity": np.array([0.3, 0.3, 0.5, 0.95, 0.2]),
        "h_od_mean": np.array([0.3, 0.01, 0.2, 0.2, 0.3]),
    }
    cls, prob = RuleCellClassifier().classify(morph)
    # small round dark -> lymphocyte; small round pale -> other; large -> epithelial; spindle -> fibroblast; tiny -> other
    assert cls.tolist() == ["lymphocyte", "other", "epithelial", "fibroblast", "other"]
    assert set(cls) <= set(CELL_CLASSES) and (prob == 1).all()


def tiny_images():
    pts = [(10.0, 10.0), (30.0, 12.0), (20.0, 30.0)]
    rgb = draw_nuclei((40, 40), pts, radius_px=4)
    return [PointImage("a", rgb, np.array(pts), np.array([1, 0, -1]), 0.55)]


def test_round_trip_and_metadata(tmp_path):
    model = CellNetClassifier(width=4).fit(tiny_images(), steps=3, batch_size=2, crop_px=32)
    path = model.save(tmp_path / "m.pt", training_data_licence=CRC_LICENCE)
    loaded = load_cell_classifier(path)
    assert loaded.metadata_["training_data_licence"].startswith("CRCHistoPhenotypes: research purpose only")
    assert loaded.metadata_["input_mpp"] == 0.55 and loaded.metadata_["classes"][1] == "lymphocyte"
    rgb = tiny_images()[0].rgb
    a, b = model.predict_maps(rgb, 0.55), loaded.predict_maps(rgb, 0.55)
    np.testing.assert_allclose(a, b, atol=2e-2)  # weights are stored in float16
    again = load_cell_classifier(loaded.save(tmp_path / "m2.pt"))
    np.testing.assert_array_equal(again.predict_maps(rgb, 0.55), b)
    labels = np.zeros((40, 40), np.int32)
    labels[8:13, 8:13], labels[28:33, 18:23] = 1, 2
    cls, prob = loaded.classify_nuclei(rgb, labels, 0.55)
    assert len(cls) == 2 and set(cls) <= set(CELL_CLASSES) and ((prob > 0) & (prob <= 1)).all()


def test_errors(tmp_path):
    with pytest.raises(NotFittedError):
        CellNetClassifier().predict_maps(np.zeros((8, 8, 3), np.uint8), 0.5)
    with pytest.raises(ModelFileError, match="not found"):
        load_cell_classifier(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_cell_classifier(bad)


def test_shipped_default_is_small_and_licensed():
    path = default_model_path()
    if not path.exists():
        pytest.skip("shipped cell classifier not built yet (scripts/train_default_cell_classifier.py)")
    assert path.stat().st_size < 5_000_000
    meta = load_cell_classifier().metadata_
    assert "research purpose only" in meta["training_data_licence"]


def test_gbm_round_trip_and_detection(tmp_path):
    from immunodig.nuclei.nucleus_gbm import NucleusGBMClassifier

    pts = [(12.0 + 20 * i, 12.0 + 20 * j) for i in range(4) for j in range(4)]
    labels = np.array([1 if (i + j) % 2 else 0 for i in range(4) for j in range(4)])
    rgb = draw_nuclei((80, 80), pts, radius_px=4)
    images = [PointImage("a", rgb, np.array(pts), labels, 0.55)]
    model = NucleusGBMClassifier(max_iter=10, pixels_per_image=200).fit(images)
    path = model.save(tmp_path / "g.pkl", training_data_licence=CRC_LICENCE)
    loaded = load_cell_classifier(path)
    assert type(loaded) is NucleusGBMClassifier and "research purpose only" in loaded.metadata_["training_data_licence"]
    xy, cls, prob = loaded.detect(rgb, 0.55)
    xy0, cls0, _ = model.detect(rgb, 0.55)
    np.testing.assert_array_equal(xy, xy0)
    assert list(cls) == list(cls0) and set(cls) <= set(CELL_CLASSES)
    # every drawn nucleus is found (one detection each, within 2 px)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xy).query(np.array(pts))
    assert len(xy) == len(pts) and d.max() <= 2
