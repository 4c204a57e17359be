"""Fixtures of the tissue-classifier tests: synthetic tile sets and small trained models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .tissue_helpers import synthetic_tiles


@pytest.fixture(scope="session")
def synth_train() -> tuple[np.ndarray, list[str]]:
    return synthetic_tiles(6, seed=11)


@pytest.fixture(scope="session")
def synth_test() -> tuple[np.ndarray, list[str]]:
    return synthetic_tiles(4, seed=12)


@pytest.fixture(scope="session")
def synth_feature_model(tmp_path_factory, synth_train) -> Path:
    """A logistic feature model trained on synthetic tiles (no augmentation, to stay fast)."""
    from immunodig.tissue.checkpoint import save_checkpoint
    from immunodig.tissue.feature_training import (
        FeatureTrainingParams,
        feature_matrix,
        feature_metadata,
        fit_feature_head,
    )

    tiles, labels = synth_train
    params = FeatureTrainingParams(n_augment=0, seed=0)
    X, _ = feature_matrix(list(tiles), 0)
    state = fit_feature_head(X, labels, params)
    classes = state.pop("_classes")
    path = tmp_path_factory.mktemp("models") / "synth_features.pt"
    return save_checkpoint(path, feature_metadata(classes, params, licence="synthetic"), state)


@pytest.fixture(scope="session")
def kather_dir(shared_data: Path) -> Path:
    p = shared_data / "kather-crc-val-he-7k"
    if not p.is_dir():
        pytest.skip(f"real Kather tiles not found at {p}")
    return p
