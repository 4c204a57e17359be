"""Tile classifiers as CNNs (torchvision architectures or immunodig's small CNN) trained from
tiles; seeded and reproducible."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from immunodig.tissue.augment import augment_tile
from immunodig.tissue.checkpoint import ModelMetadata
from immunodig.tissue.classifier_eval import classification_metrics
from immunodig.tissue.dataset import tile_of
from immunodig.vocab import KATHER_CLASSES

#: ImageNet statistics, the usual normalisation of Kather-style CNNs.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


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

        tile = tile_of(self.items[i], self.size_px)
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
