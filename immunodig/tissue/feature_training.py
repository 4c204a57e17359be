"""Tile classifiers from hand-crafted features: feature matrices (with augmentation), a linear or
tree-ensemble head, and its metadata; seeded and reproducible."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from immunodig.errors import ConfigError
from immunodig.tissue.augment import augment_tile
from immunodig.tissue.checkpoint import ModelMetadata
from immunodig.tissue.dataset import tile_of
from immunodig.vocab import KATHER_CLASSES


@dataclass
class FeatureTrainingParams:
    """Settings of the feature-model trainer (:func:`fit_feature_head`).

    Parameters
    ----------
    head : str
        ``logistic`` (multinomial logistic regression) or ``xgboost`` (gradient boosting).
    n_augment : int
        Augmented copies (dihedral, crop, HED and colour jitter) per training tile.
    C : float
        Inverse L2 strength of the logistic head.
    seed : int
        Seed of augmentation and of the head.
    """

    head: str = "logistic"
    n_augment: int = 8
    C: float = 1.0
    seed: int = 0


def feature_matrix(items: Sequence[Any], n_augment: int = 0, seed: int = 0, size_px: int = 224,
                   progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features of every item (row ``i``) and of ``n_augment`` augmented copies of it.

    Returns
    -------
    X : float32 (N, F)
    X_aug : float32 (N, n_augment, F)
    """
    from immunodig.tissue.handcrafted import feature_names, tile_features

    n_feat = len(feature_names())
    X = np.zeros((len(items), n_feat), np.float32)
    XA = np.zeros((len(items), n_augment, n_feat), np.float32)
    it = enumerate(items)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=len(items), desc="features", unit="tile")
    for i, item in it:
        tile = tile_of(item, size_px)
        X[i] = tile_features(tile)
        rng = np.random.default_rng([seed, i])
        for k in range(n_augment):
            XA[i, k] = tile_features(augment_tile(tile, rng))
    return X, XA


def fit_feature_head(X: np.ndarray, y: Sequence[str], params: FeatureTrainingParams,
                     sample_weight: np.ndarray | None = None) -> dict[str, Any]:
    """Fit standardisation + head on a feature matrix; returns the checkpoint state dict.

    The class order of the head is ``KATHER_CLASSES`` restricted to the labels present.
    """
    import torch

    classes = [c for c in KATHER_CLASSES if c in set(y)]
    yi = np.asarray([classes.index(c) for c in y])
    mean = X.mean(axis=0).astype(np.float64)
    scale = X.std(axis=0).astype(np.float64)
    scale[scale < 1e-8] = 1.0
    Z = (X - mean) / scale
    state: dict[str, Any] = {"scaler_mean": torch.as_tensor(mean), "scaler_scale": torch.as_tensor(scale)}
    if params.head == "logistic":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=params.C, max_iter=5000, random_state=params.seed)
        lr.fit(Z, yi, sample_weight=sample_weight)
        coef, intercept = lr.coef_, lr.intercept_
        if len(classes) == 2:  # sklearn's binary form -> two-class softmax
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        state |= {"coef": torch.as_tensor(coef), "intercept": torch.as_tensor(intercept)}
    elif params.head == "xgboost":
        from xgboost import XGBClassifier

        xgb = XGBClassifier(n_estimators=300, max_depth=3, learning_rate=0.1, subsample=0.8,
                            colsample_bytree=0.5, n_jobs=1, random_state=params.seed)
        xgb.fit(Z.astype(np.float32), yi, sample_weight=sample_weight)
        raw = xgb.get_booster().save_raw("json")
        state["booster_json"] = torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone()
    else:
        raise ConfigError(f"unknown feature head {params.head!r}; use logistic or xgboost")
    state["_classes"] = classes
    return state


def feature_metadata(classes: list[str], params: FeatureTrainingParams, **kw: Any) -> ModelMetadata:
    """Metadata of a feature model (architecture ``features-<head>``)."""
    from immunodig.tissue.handcrafted import FEATURE_VERSION

    return ModelMetadata(architecture=f"features-{params.head}", class_names=classes,
                         output="probabilities",
                         extra={"feature_version": FEATURE_VERSION, "n_augment": params.n_augment,
                                "C": params.C}, **kw)


def cv_predict_features(X: np.ndarray, XA: np.ndarray, labels: list[str],
                         fp: FeatureTrainingParams, n_splits: int = 5) -> list[str]:
    """Out-of-fold predictions; augmented copies of test tiles never enter training."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    n_splits = max(2, min(n_splits, int(np.bincount(np.unique(y, return_inverse=True)[1]).min())))
    pred = np.empty(len(y), dtype=object)
    for tr, te in StratifiedKFold(n_splits, shuffle=True, random_state=fp.seed).split(X, y):
        state = fit_feature_head(np.vstack([X[tr], XA[tr].reshape(-1, X.shape[1])]),
                                 list(y[tr]) + [c for c in y[tr] for _ in range(XA.shape[1])], fp)
        pred[te] = predict_with_state(state, X[te])
    return list(pred)


def predict_with_state(state: dict[str, Any], X: np.ndarray) -> list[str]:
    """Predicted classes of feature rows ``X`` from a :func:`fit_feature_head` state dict."""
    z = np.nan_to_num((X - state["scaler_mean"].numpy()) / state["scaler_scale"].numpy())
    if "coef" in state:
        scores = z @ state["coef"].numpy().T + state["intercept"].numpy()
    else:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(state["booster_json"].numpy().tobytes()))
        scores = booster.predict(xgb.DMatrix(z.astype(np.float32)))
    return [state["_classes"][i] for i in scores.argmax(axis=1)]
