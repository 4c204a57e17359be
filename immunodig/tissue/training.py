"""Training of tile classifiers: hand-crafted features + head, or a CNN; seeded and reproducible.

Both trainers take tiles as *items* (a file path or an in-memory uint8 array) with Kather labels,
so a folder of 100,000 tiles is read lazily while tests and the default-model script pass arrays.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from immunodig import __version__
from immunodig.errors import ConfigError
from immunodig.tissue.augment import augment_tile
from immunodig.tissue.checkpoint import ModelMetadata, save_checkpoint
from immunodig.tissue.evaluate import classification_metrics, save_confusion_png
from immunodig.vocab import KATHER_CLASSES

#: ImageNet statistics, the usual normalisation of Kather-style CNNs.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def _tile(item: Any, size_px: int) -> np.ndarray:
    if isinstance(item, np.ndarray):
        return item
    from immunodig.tissue.dataset import read_tile

    return read_tile(item, size_px)


# --------------------------------------------------------------------------------------------
# hand-crafted features
# --------------------------------------------------------------------------------------------
@dataclass
class FeatureTrainingParams:
    """Settings of :func:`train_feature_model`.

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
        tile = _tile(item, size_px)
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


# --------------------------------------------------------------------------------------------
# CNN
# --------------------------------------------------------------------------------------------
@dataclass
class CNNTrainingParams:
    """Settings of :func:`train_cnn`.

    Parameters
    ----------
    architecture : str
        ``smallcnn`` or a torchvision model name (trained from scratch).
    epochs : int
        Maximum number of epochs.
    batch_size : int
    lr : float
        Peak AdamW learning rate (cosine decay).
    weight_decay : float
    patience : int
        Early stopping: epochs without improvement of validation balanced accuracy.
    seed : int
    width : int
        Width of ``smallcnn``.
    num_workers : int
        DataLoader worker processes (augmentation runs there).
    device : str or None
        ``None`` picks CUDA when available.
    """

    architecture: str = "smallcnn"
    epochs: int = 60
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 15
    seed: int = 0
    width: int = 32
    num_workers: int = 0
    device: str | None = None


class _TileDataset:
    """torch Dataset over items; augmentation seeded by (seed, epoch, index)."""

    def __init__(self, items: Sequence[Any], labels: np.ndarray, size_px: int, augment: bool, seed: int):
        self.items, self.labels, self.size_px = list(items), labels, size_px
        self.augment, self.seed, self.epoch = augment, seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        import torch

        tile = _tile(self.items[i], self.size_px)
        if self.augment:
            tile = augment_tile(tile, np.random.default_rng([self.seed, self.epoch, i]))
        return torch.from_numpy(np.array(tile, dtype=np.uint8)), int(self.labels[i])


def _predict_uint8(model, loader, mean, std, device) -> np.ndarray:
    import torch

    model.eval()
    preds = []
    with torch.inference_mode():
        for x, _ in loader:
            x = x.to(device).permute(0, 3, 1, 2).float()
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            preds.append(model(x).argmax(1).cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros(0, int)


def train_cnn(items: Sequence[Any], labels: Sequence[str], val_items: Sequence[Any] | None = None,
              val_labels: Sequence[str] | None = None, params: CNNTrainingParams | None = None,
              size_px: int = 224, log=print) -> tuple[Any, list[str], dict[str, Any]]:
    """Train a CNN from scratch with heavy augmentation and early stopping.

    Without a validation set, a stratified 15 % of ``items`` is held out for early stopping.

    Returns
    -------
    model : torch.nn.Module (best epoch, eval mode, CPU)
    classes : list of str (output order)
    info : dict (best epoch, history, device, validation source)
    """
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler

    from immunodig.tissue.networks import build_network

    p = params or CNNTrainingParams()
    torch.manual_seed(p.seed)
    labels = list(labels)
    classes = [c for c in KATHER_CLASSES if c in set(labels)]
    y = np.asarray([classes.index(c) for c in labels])
    val_source = "validation set"
    if val_items is None:
        rng = np.random.default_rng(p.seed)
        n_val = [max(1, int(round(0.15 * (y == k).sum()))) for k in range(len(classes))]
        val_idx = np.concatenate([rng.permutation(np.flatnonzero(y == k))[:n_val[k]]
                                  for k in range(len(classes))])
        train_mask = np.ones(len(y), bool)
        train_mask[val_idx] = False
        val_items, val_y = [items[i] for i in val_idx], y[val_idx]
        items, y = [items[i] for i in np.flatnonzero(train_mask)], y[train_mask]
        val_source = "internal stratified 15 % hold-out"
    else:
        val_y = np.asarray([classes.index(c) for c in val_labels])
    device = p.device or ("cuda" if torch.cuda.is_available() else "cpu")
    train_ds = _TileDataset(items, y, size_px, True, p.seed)
    counts = np.bincount(y, minlength=len(classes)).astype(float)
    sampler = WeightedRandomSampler(torch.as_tensor(1.0 / counts[y]), num_samples=len(y), replacement=True,
                                    generator=torch.Generator().manual_seed(p.seed))
    pin = device.startswith("cuda")
    train_dl = DataLoader(train_ds, batch_size=p.batch_size, sampler=sampler, num_workers=p.num_workers,
                          pin_memory=pin, drop_last=len(y) > p.batch_size)
    val_dl = DataLoader(_TileDataset(val_items, val_y, size_px, False, p.seed), batch_size=64,
                        num_workers=p.num_workers, pin_memory=pin)
    model = build_network(p.architecture, len(classes), {"width": p.width}).to(device)
    model = model.to(memory_format=torch.channels_last)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    steps = max(1, p.epochs * len(train_dl))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=steps, pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    best = (-1.0, 0, None)
    history = []
    for epoch in range(p.epochs):
        train_ds.epoch = epoch
        model.train()
        total = 0.0
        for x, t in train_dl:
            x = x.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            t = t.to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                loss = loss_fn(model(x), t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(t)
        pred = _predict_uint8(model, val_dl, mean, std, device)
        bacc = classification_metrics([classes[i] for i in val_y], [classes[i] for i in pred],
                                      classes)["balanced_accuracy"]
        history.append({"epoch": epoch, "loss": total / len(y), "val_balanced_accuracy": bacc})
        if log:
            log(f"epoch {epoch:3d} loss {total / len(y):.4f} val balanced accuracy {bacc:.3f}")
        if bacc > best[0]:
            best = (bacc, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= p.patience:
            break
    model.load_state_dict(best[2])
    model = model.cpu().eval()
    return model, classes, {"best_epoch": best[1], "best_val_balanced_accuracy": best[0],
                            "history": history, "device": device, "validation": val_source,
                            "validation_items": list(val_items),
                            "validation_labels": [classes[i] for i in val_y]}


def cnn_metadata(classes: list[str], params: CNNTrainingParams, **kw: Any) -> ModelMetadata:
    """Metadata of a CNN checkpoint trained by :func:`train_cnn`."""
    return ModelMetadata(architecture=params.architecture, class_names=classes, mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, output="logits",
                         extra={"width": params.width, "downsample": 2} if params.architecture == "smallcnn" else {},
                         **kw)


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------
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
            y_pred = _cv_predict_features(X, XA, labels, fp)
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
            y_pred += clf.predict(np.stack([_tile(p, tile_size_px) for p in eval_items[s:s + 64]]))
    metrics = classification_metrics(y_true, y_pred)
    metrics |= {"evaluation": evaluation, "model": str(out)}
    meta.metrics = {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "evaluation")}
    save_checkpoint(out, meta, state)
    metrics["file_sha256"] = load_tissue_classifier(out).file_sha256
    _write_json(out.with_suffix(".metrics.json"), metrics)
    if "confusion" in metrics:
        save_confusion_png(metrics, out.with_suffix(".confusion.png"), title=f"{out.name}: {evaluation}")
    return metrics


def _cv_predict_features(X: np.ndarray, XA: np.ndarray, labels: list[str],
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


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
