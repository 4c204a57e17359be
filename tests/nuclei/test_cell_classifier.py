"""Cell classifiers: the morphology rule and the trained network's save/load round trip."""

import numpy as np
import pytest

from immunodig.errors import ConfigError, ModelFileError, NotFittedError
from immunodig.nuclei.cell_classifier import CRC_LICENCE, CellClassifier, default_model_path, load_cell_classifier
from immunodig.nuclei.cellnet_classifier import CellNetClassifier
from immunodig.nuclei.datasets import PointImage
from immunodig.nuclei.rule_classifier import RuleCellClassifier
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
    # small round dark -> lymphocyte; small round pale -> other; large -> epithelial;
    # spindle -> fibroblast; tiny -> other
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


def two_kind_image(seed):
    """Small dark discs (lymphocytes, label 1) and large pale discs (epithelial, label 0) on a grid."""
    rng = np.random.default_rng(seed)
    rgb = np.empty((160, 160, 3), np.uint8)
    rgb[:] = (235, 205, 225)
    yy, xx = np.mgrid[0:160, 0:160]
    pts, labels = [], []
    for i in range(6):
        for j in range(6):
            x, y = 14 + 26 * i + rng.uniform(-2, 2), 14 + 26 * j + rng.uniform(-2, 2)
            lym = bool(rng.random() < 0.5)
            r, col = (4, (60, 30, 110)) if lym else (8, (115, 75, 165))
            rgb[(xx - x) ** 2 + (yy - y) ** 2 <= r**2] = col
            pts.append((x, y)), labels.append(1 if lym else 0)
    return PointImage(f"t{seed}", rgb, np.array(pts), np.array(labels), 0.5)


def test_gbm_learns_and_round_trips(tmp_path):
    from immunodig.nuclei.classical import ClassicalSegmenter
    from immunodig.nuclei.patch_ensemble import MODEL_CLASSES, PatchEnsembleClassifier

    model = PatchEnsembleClassifier(max_iter=30, cnn_epochs=2, cnn_models=2, gbm_weight=0.5).fit(
        [two_kind_image(s) for s in range(3)]
    )
    path = model.save(tmp_path / "g.pkl", training_data_licence=CRC_LICENCE)
    loaded = load_cell_classifier(path)
    assert (
        type(loaded) is PatchEnsembleClassifier and "research purpose only" in loaded.metadata_["training_data_licence"]
    )
    assert (
        loaded.metadata_["classes"] == list(MODEL_CLASSES) and len(loaded.cnn_states_) == 2 and loaded.gbm_ is not None
    )
    test = two_kind_image(10)
    labels = ClassicalSegmenter().segment(test.rgb, test.mpp)
    np.testing.assert_allclose(
        loaded.predict_proba(test.rgb, labels, 0.5), model.predict_proba(test.rgb, labels, 0.5), atol=2e-2
    )  # CNN stored in float16
    # held-out image: small dark nuclei are lymphocytes, large pale ones epithelial
    xy, cls, prob = loaded.detect(test.rgb, 0.5)
    from scipy.spatial import cKDTree

    d, j = cKDTree(test.points_xy).query(xy)
    ok = d < 4
    assert ok.sum() >= 20 and set(cls) <= set(CELL_CLASSES) and prob.shape == (len(xy), 4)
    truth = np.where(test.labels[j[ok]] == 1, "lymphocyte", "epithelial")
    assert set(truth) == {"lymphocyte", "epithelial"} and (cls[ok] == truth).mean() >= 0.9
    cls2, p2 = loaded.classify_nuclei(test.rgb, labels, 0.5)
    assert len(cls2) == labels.max() and ((p2 > 0) & (p2 <= 1)).all()


def test_cnn_ensemble_alone_learns():
    """The default kind (patch CNNs, no boosting) separates the two nucleus kinds on a held-out image."""
    from immunodig.nuclei.classical import ClassicalSegmenter
    from immunodig.nuclei.patch_ensemble import PatchEnsembleClassifier

    model = PatchEnsembleClassifier(cnn_epochs=60, cnn_models=1).fit([two_kind_image(s) for s in range(3)])
    assert model.gbm_ is None and model.metadata_["features"] == []
    test = two_kind_image(11)
    labels = ClassicalSegmenter().segment(test.rgb, test.mpp)
    cls, prob = model.classify_nuclei(test.rgb, labels, 0.5)
    from scipy.spatial import cKDTree

    from immunodig.nuclei.morphology import instance_centroids

    d, j = cKDTree(test.points_xy).query(instance_centroids(labels))
    ok = d < 4
    truth = np.where(test.labels[j[ok]] == 1, "lymphocyte", "epithelial")
    assert ok.sum() >= 20 and (cls[ok] == truth).mean() >= 0.9 and ((prob > 0) & (prob <= 1)).all()


def test_none_is_reported_as_other():
    from immunodig.nuclei.patch_ensemble import MODEL_CLASSES, decide

    prob = np.array([[0.1, 0.3, 0.1, 0.1, 0.4], [0.1, 0.5, 0.1, 0.1, 0.2], [0.6, 0.1, 0.1, 0.1, 0.1]])
    assert MODEL_CLASSES[-1] == "none"
    cls, p = decide(prob)
    assert cls.tolist() == ["other", "lymphocyte", "epithelial"]
    np.testing.assert_allclose(p, [0.5, 0.5, 0.6])


def test_bad_ensemble_settings():
    from immunodig.nuclei.patch_ensemble import PatchEnsembleClassifier

    with pytest.raises(ConfigError, match="cnn_models"):
        PatchEnsembleClassifier(cnn_models=0)
    with pytest.raises(ConfigError, match="gbm_weight"):
        PatchEnsembleClassifier(gbm_weight=1.5)


def test_gbm_wrong_format(tmp_path):
    import gzip
    import json
    import pickle

    from immunodig.nuclei.patch_ensemble import PatchEnsembleClassifier

    with pytest.raises(NotFittedError):
        PatchEnsembleClassifier().classify_nuclei(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.int32), 0.5)
    bad = tmp_path / "old.pkl"
    with gzip.open(bad, "wb") as fh:
        pickle.dump({"metadata": json.dumps({"format": "immunodig-nucleus-gbm-v2"})}, fh)
    with pytest.raises(ModelFileError, match="retrain"):
        load_cell_classifier(bad)


def test_shipped_default_is_weights_only_and_follows_the_contract():
    import torch

    blob = torch.load(default_model_path(), map_location="cpu", weights_only=True)
    assert default_model_path().suffix == ".pt" and set(blob) == {"metadata", "cnn_states"}
    model = load_cell_classifier()
    assert isinstance(model, CellClassifier) and isinstance(RuleCellClassifier(), CellClassifier)
    assert set(model.classes) == {"epithelial", "lymphocyte", "fibroblast", "other"}
    assert len(model.file_sha256) == 64 and RuleCellClassifier().file_sha256 is None
    # converted from the v3 pickle bit for bit (predictions checked identical on CRC images)
    assert (
        model.metadata_["converted_from_sha256"] == "7548576c34336460dd10dac34608654be4a608f57e5539aace51c14c24d98eec"
    )


def test_pt_round_trip_keeps_predictions_identical(tmp_path):
    model = load_cell_classifier()
    again = load_cell_classifier(model.save(tmp_path / "copy.pt"))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    labels = np.zeros((64, 64), np.int32)
    labels[10:18, 10:18], labels[40:50, 30:38] = 1, 2
    assert np.array_equal(model.predict_proba(rgb, labels, 0.5), again.predict_proba(rgb, labels, 0.5))
