"""``train-tissue-classifier``: a tile folder -> a model file, its metrics and confusion matrix.

Both trainers (:mod:`immunodig.tissue.feature_training`, :mod:`immunodig.tissue.cnn_training`)
take tiles as *items* (a file path or an in-memory uint8 array) with Kather labels, so a folder of
100,000 tiles is read lazily while tests and the default-model script pass arrays.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from immunodig import __version__
from immunodig.errors import ConfigError
from immunodig.io import write_json_atomic
from immunodig.tissue.checkpoint import save_checkpoint
from immunodig.tissue.classifier_eval import classification_metrics, save_confusion_png
from immunodig.tissue.cnn_training import CNNTrainingParams, cnn_metadata, train_cnn
from immunodig.tissue.dataset import tile_of
from immunodig.tissue.feature_training import (
    FeatureTrainingParams,
    cv_predict_features,
    feature_matrix,
    feature_metadata,
    fit_feature_head,
)


def train_tissue_classifier(train_dir: str | Path, out: str | Path, val_dir: str | Path | None = None,
                            method: str = "features", epochs: int = 60, seed: int = 0,
                            n_augment: int = 8, head: str = "logistic",
                            input_mpp: float = 0.5, tile_size_px: int = 224,
                            licence: str = "unknown", log=print) -> dict[str, Any]:
    """Train on a folder-per-class tile set and write model, metrics JSON and confusion PNG.

    ``n_augment`` augmented copies per tile and the ``head`` (``logistic`` or ``xgboost``) apply
    to the ``features`` method (the CNN augments on the fly). Writes ``out`` (the model file),
    ``<out stem>.metrics.json`` and ``<out stem>.confusion.png`` beside it. Metrics come from
    ``val_dir`` when given; otherwise from 5-fold stratified cross-validation (``features``) or
    the internal early-stopping hold-out (``cnn``).

    Returns
    -------
    dict
        The metrics written to the JSON file.
    """
    from immunodig.tissue.classifier import load_tissue_classifier
    from immunodig.tissue.dataset import list_folder_dataset

    if method not in ("features", "cnn"):
        raise ConfigError(f"--method {method!r}: use 'features' or 'cnn'")
    out = Path(out)
    train = list_folder_dataset(train_dir)
    items, labels = [p for p, _ in train], [c for _, c in train]
    val = list_folder_dataset(val_dir) if val_dir else None
    provenance = {"train_dir": Path(train_dir).name, "n_train": len(items), "seed": seed,
                  "method": method, "code_version": __version__,
                  "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "command": "train-tissue-classifier"}
    common = dict(input_mpp=input_mpp, tile_size_px=tile_size_px, provenance=provenance, licence=licence)
    y_pred: list[str] | None = None  # out-of-fold predictions (features without --val)
    if method == "features":
        fp = FeatureTrainingParams(head=head, seed=seed, n_augment=n_augment)
        X, XA = feature_matrix(items, fp.n_augment, seed, tile_size_px, progress=log is not None)
        state = fit_feature_head(np.vstack([X, XA.reshape(-1, X.shape[1])]),
                                 labels + [c for c in labels for _ in range(fp.n_augment)], fp)
        classes = state.pop("_classes")
        meta = feature_metadata(classes, fp, **common)
        if val is None:
            evaluation = "5-fold stratified cross-validation on the training tiles"
            y_pred = cv_predict_features(X, XA, labels, fp)
            y_true = labels
    else:
        cp = CNNTrainingParams(epochs=epochs, seed=seed)
        model, classes, info = train_cnn(items, labels, [p for p, _ in val] if val else None,
                                         [c for _, c in val] if val else None, cp, tile_size_px, log)
        provenance |= {"best_epoch": info["best_epoch"], "device": info["device"]}
        meta = cnn_metadata(classes, cp, **common)
        state = model.state_dict()
        if val is None:
            evaluation = info["validation"] + " (also used for early stopping)"
            y_true = info["validation_labels"]
    tmp_model = save_checkpoint(out, meta, state)
    clf = load_tissue_classifier(tmp_model)
    if y_pred is None:  # score the saved model on --val or on the CNN's internal hold-out
        if val is not None:
            evaluation = f"validation folder {Path(val_dir).name}"
            if method == "cnn":
                evaluation += " (also used for early stopping)"
            y_true, eval_items = [c for _, c in val], [p for p, _ in val]
        else:  # CNN without --val: the internal hold-out
            eval_items = info["validation_items"]
        y_pred = []
        for s in range(0, len(eval_items), 64):
            y_pred += clf.predict(np.stack([tile_of(p, tile_size_px) for p in eval_items[s:s + 64]]))
    metrics = classification_metrics(y_true, y_pred)
    metrics |= {"evaluation": evaluation, "model": str(out)}
    meta.metrics = {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "evaluation")}
    save_checkpoint(out, meta, state)
    metrics["file_sha256"] = load_tissue_classifier(out).file_sha256
    write_json_atomic(out.with_suffix(".metrics.json"), metrics)
    if "confusion" in metrics:
        save_confusion_png(metrics, out.with_suffix(".confusion.png"), title=f"{out.name}: {evaluation}")
    return metrics
