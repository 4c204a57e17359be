"""Classification metrics, confusion-matrix plot and evaluation of a model on a tile folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from immunodig.vocab import KATHER_CLASSES


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str],
                           classes: Sequence[str] = KATHER_CLASSES) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class precision/recall/F1/support and confusion matrix.

    Balanced accuracy is the mean recall over the classes present in ``y_true``.

    Returns
    -------
    dict
        ``n, accuracy, balanced_accuracy, macro_f1, per_class {class: {precision, recall, f1,
        support}}, confusion (rows = true, columns = predicted), confusion_classes``.
    """
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    classes = list(classes)
    idx = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        cm[idx[t], idx[p]] += 1
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    per_class: dict[str, dict[str, float | int]] = {}
    for i, c in enumerate(classes):
        prec = tp[i] / predicted[i] if predicted[i] else 0.0
        rec = tp[i] / support[i] if support[i] else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[c] = {"precision": float(prec), "recall": float(rec), "f1": float(f1),
                        "support": int(support[i])}
    present = support > 0
    n = int(cm.sum())
    nan = float("nan")
    f1_present = [per_class[c]["f1"] for c, p in zip(classes, present) if p]
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else nan,
        "balanced_accuracy": float(np.mean(tp[present] / support[present])) if present.any() else nan,
        "macro_f1": float(np.mean(f1_present)) if f1_present else nan,
        "per_class": per_class,
        "confusion": cm.tolist(),
        "confusion_classes": classes,
    }


def plot_confusion(metrics: dict[str, Any], ax=None, title: str | None = None):
    """Draw the row-normalised confusion matrix of ``metrics``; returns the Axes."""
    import matplotlib.pyplot as plt

    cm = np.asarray(metrics["confusion"], dtype=float)
    classes = metrics["confusion_classes"]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5.2))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title or f"balanced accuracy {metrics['balanced_accuracy']:.3f} (n={metrics['n']})")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="row fraction")
    return ax


def save_confusion_png(metrics: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Write the confusion-matrix plot as PNG (headless backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ax = plot_confusion(metrics, title=title)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=120)
    plt.close(ax.figure)
    return Path(path)


def evaluate_folder(directory: str | Path, model: str | Path | None = None,
                    batch_size: int = 64) -> dict[str, Any]:
    """Metrics of a model (default: the shipped one) on a folder-per-class tile set.

    Folder datasets carry no µm/px: tiles are assumed to be at the model's ``input_mpp`` and are
    resized (bilinear) to its ``tile_size_px`` when their pixel size differs.
    """
    from immunodig.tissue.classifier import load_tissue_classifier
    from immunodig.tissue.dataset import list_folder_dataset, read_tile

    clf = load_tissue_classifier(model)
    items = list_folder_dataset(directory)
    y_true, y_pred = [], []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        tiles = np.stack([read_tile(p, clf.tile_size_px) for p, _ in chunk])
        y_pred += clf.predict(tiles)
        y_true += [c for _, c in chunk]
    out = classification_metrics(y_true, y_pred)
    out["model"] = {"path": str(clf.path), "file_sha256": clf.file_sha256,
                    "architecture": clf.metadata.architecture}
    out["data"] = str(Path(directory))
    return out
