"""The shipped default model: loads offline, documents itself, sane on real and synthetic tiles."""

from __future__ import annotations

import numpy as np

from immunodig.tissue.classifier import default_model_path, load_tissue_classifier
from immunodig.tissue.classifier_eval import evaluate_folder
from immunodig.vocab import KATHER_CLASSES


def test_default_model_file_is_small_and_documented():
    path = default_model_path()
    assert path.is_file() and path.stat().st_size < 5_000_000
    clf = load_tissue_classifier()
    assert clf.class_names == KATHER_CLASSES
    assert (clf.input_mpp, clf.tile_size_px) == (0.5, 224)
    m = clf.metadata.metrics
    lo, hi = m["cv_balanced_accuracy_ci95"]
    assert 0 < lo <= m["cv_balanced_accuracy"] <= hi <= 1
    assert "CC BY 4.0" in clf.metadata.licence
    assert clf.metadata.provenance["script"] == "scripts/train_default_tissue_model.py"


def test_default_model_on_real_tiles_sanity(kather_dir):
    """SANITY CHECK ONLY: the default was trained on these very tiles, so this measures fit, not
    generalisation (its cross-validated figure is in the metadata and docs/tissue.md)."""
    m = evaluate_folder(kather_dir)
    assert m["n"] == 95
    assert m["balanced_accuracy"] >= 0.95, m["per_class"]


def test_default_model_reads_synthetic_tiles(synth_test):
    tiles, labels = synth_test
    pred = load_tissue_classifier().predict(tiles)
    assert np.mean(np.asarray(pred) == np.asarray(labels)) >= 0.9
