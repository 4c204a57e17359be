"""Training a structure segmenter from annotated regions (seeded, CPU or GPU).

Each epoch draws ``patches_per_epoch`` patches of ``patch_px`` at the model's mpp: half of them
(``focus``) centred on a pixel of a structure class picked uniformly among the classes the image
has (rare structures get seen), the others anywhere; each patch is flipped and rotated by a
multiple of 90° together with its labels, and its stain jittered (HED, Tellez et al. 2019) and
colour jittered (:mod:`immunodig.tissue.augment`). The loss is class-weighted cross-entropy
(weights ``frequency ** -0.5``, mean 1) plus Dice loss (``segmentation_models_pytorch.losses``),
ignored pixels left out. Early stopping keeps the epoch with the best validation Dice (mean over
classes): validation is a group of whole images (20 %, at least one) when there are 3 or more,
else the bottom 20 % of every image (never drawn for training).
"""

from __future__ import annotations

import copy
import platform
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from immunodig.errors import DatasetError
from immunodig.structures.dataset import AnnotatedRegion
from immunodig.structures.metrics import SegmentationScores
from immunodig.structures.model_file import LoadedSegmenter
from immunodig.structures.rasterise import IGNORE_LABEL
from immunodig.tissue.augment import colour_jitter, hed_jitter
from immunodig.tissue.checkpoint import ModelMetadata

#: ImageNet statistics (smp encoders' usual normalisation).
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass
class SegmenterTrainingParams:
    """Settings of :func:`train_segmenter`; the defaults train a few 1000² images in minutes on
    2 CPU cores.

    Parameters
    ----------
    architecture, encoder : str
        smp architecture and encoder (:func:`immunodig.structures.networks.build_network`).
    decoder_channels : tuple of int
        U-Net decoder widths (smaller than smp's default ``(256, 128, 64, 32, 16)`` for CPU speed).
    encoder_weights : str or None
        Local file of encoder weights (``None``: random initialisation).
    patch_px, batch_size, patches_per_epoch, epochs, patience : int
        Patch edge at the model's mpp; patches per step and per epoch; maximum epochs; epochs
        without a better validation Dice before stopping.
    lr, weight_decay : float
        AdamW peak learning rate (one-cycle schedule) and weight decay.
    focus : float
        Fraction of patches centred on a structure pixel.
    stain_sigma : float
        HED jitter strength.
    instances : str
        ``components`` or ``watershed`` (touching objects such as nuclei).
    min_object_um2 : float
        Objects smaller than this are dropped at inference.
    seed : int
    num_threads : int or None
        ``torch.set_num_threads`` (``None``: torch's default).
    device : str or None
        ``None`` picks CUDA when available.
    """

    architecture: str = "unet"
    encoder: str = "resnet18"
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)
    encoder_weights: str | None = None
    patch_px: int = 256
    batch_size: int = 8
    patches_per_epoch: int = 64
    epochs: int = 30
    patience: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    focus: float = 0.5
    stain_sigma: float = 0.05
    instances: str = "components"
    min_object_um2: float = 0.0
    seed: int = 0
    num_threads: int | None = None
    device: str | None = None


def split_for_validation(regions: Sequence[AnnotatedRegion], seed: int,
                         fraction: float = 0.2) -> tuple[list[AnnotatedRegion], list[AnnotatedRegion], str]:
    """Training and validation regions and a description of the split (module docstring)."""
    groups = sorted({r.group for r in regions})
    if len(groups) >= 3:
        rng = np.random.default_rng(seed)
        val = set(rng.permutation(groups)[:max(1, round(fraction * len(groups)))].tolist())
        return ([r for r in regions if r.group not in val], [r for r in regions if r.group in val],
                f"grouped by image: {len(val)} of {len(groups)} images held out ({', '.join(sorted(val))})")
    train, val = [], []
    for r in regions:
        cut = int(round(r.labels.shape[0] * (1 - fraction)))
        if cut < 1 or cut >= r.labels.shape[0]:
            train.append(r)
            continue
        train.append(replace(r, rgb=r.rgb[:cut], labels=r.labels[:cut], instances=r.instances[:cut]))
        val.append(replace(r, rgb=r.rgb[cut:], labels=r.labels[cut:], instances=r.instances[cut:],
                           origin_px=(r.origin_px[0], r.origin_px[1] + cut * r.mpp / (r.source_mpp or r.mpp))))
    return train, val, f"bottom {fraction:.0%} of each of {len(groups)} image(s) (fewer than 3 images)"


class PatchSampler:
    """Draws augmented training patches from regions (module docstring)."""

    def __init__(self, regions: Sequence[AnnotatedRegion], n_classes: int, params: SegmenterTrainingParams):
        self.regions, self.p = list(regions), params
        valid = np.array([(r.labels != IGNORE_LABEL).sum() for r in self.regions], float)
        if valid.sum() == 0:
            raise DatasetError("no annotated pixel to train on (everything lies outside the regions of interest)")
        self.region_p = valid / valid.sum()
        self.class_pixels = [[np.flatnonzero(r.labels.ravel() == k) for k in range(1, n_classes + 1)]
                             for r in self.regions]

    def _crop(self, r: AnnotatedRegion, y: int, x: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.p.patch_px
        h, w = r.labels.shape
        ph, pw = max(0, s - h), max(0, s - w)
        rgb, lab = r.rgb, r.labels
        if ph or pw:
            rgb = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="reflect")
            lab = np.pad(lab, ((0, ph), (0, pw)), constant_values=IGNORE_LABEL)
        y = int(np.clip(y, 0, rgb.shape[0] - s))
        x = int(np.clip(x, 0, rgb.shape[1] - s))
        return rgb[y:y + s, x:x + s], lab[y:y + s, x:x + s]

    def patch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One augmented ``(rgb uint8 (s, s, 3), labels uint8 (s, s))`` pair."""
        i = int(rng.choice(len(self.regions), p=self.region_p))
        r, s = self.regions[i], self.p.patch_px
        h, w = r.labels.shape
        present = [px for px in self.class_pixels[i] if len(px)]
        if present and rng.random() < self.p.focus:
            px = present[int(rng.integers(len(present)))]
            cy, cx = divmod(int(px[int(rng.integers(len(px)))]), w)
            jitter = rng.integers(-(s // 4), s // 4 + 1, 2)
            y, x = cy - s // 2 + int(jitter[0]), cx - s // 2 + int(jitter[1])
        else:
            y, x = int(rng.integers(0, max(1, h - s + 1))), int(rng.integers(0, max(1, w - s + 1)))
        rgb, lab = self._crop(r, y, x)
        k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        rgb, lab = np.rot90(rgb, k), np.rot90(lab, k)
        if flip:
            rgb, lab = rgb[:, ::-1], lab[:, ::-1]
        rgb = colour_jitter(hed_jitter(np.ascontiguousarray(rgb), rng, sigma=self.p.stain_sigma), rng)
        return rgb, np.ascontiguousarray(lab)


def class_weights(regions: Sequence[AnnotatedRegion], n_labels: int) -> np.ndarray:
    """Cross-entropy weights ``frequency ** -0.5`` per label (background first), mean 1; labels
    absent from the training pixels get weight 1."""
    counts = np.zeros(n_labels, float)
    for r in regions:
        counts += np.bincount(r.labels[r.labels != IGNORE_LABEL].ravel(), minlength=n_labels)[:n_labels]
    w = np.ones(n_labels)
    seen = counts > 0
    w[seen] = (counts[seen] / counts.sum()) ** -0.5
    return w / w.mean()


def segmenter_metadata(classes: Sequence[str], mpp: float, params: SegmenterTrainingParams,
                       **kw: Any) -> ModelMetadata:
    """Metadata of a network trained by :func:`train_segmenter` (``background`` first)."""
    return ModelMetadata(architecture=params.architecture, class_names=["background", *classes], input_mpp=mpp,
                         tile_size_px=params.patch_px, mean=IMAGENET_MEAN, std=IMAGENET_STD, output="logits",
                         extra={"encoder": params.encoder, "decoder_channels": list(params.decoder_channels),
                                "instances": params.instances, "min_object_um2": params.min_object_um2},
                         **kw)


def score_regions(segmenter: Any, regions: Sequence[AnnotatedRegion], classes: Sequence[str],
                  scores: SegmentationScores | None = None) -> SegmentationScores:
    """Predict every region with a :class:`~immunodig.structures.inference.StructureSegmenter`
    and add it to ``scores`` (a new one by default)."""
    scores = scores or SegmentationScores(list(classes))
    for r in regions:
        labels, _ = segmenter.predict(r.rgb)
        scores.add(r.group, r.labels, r.instances, labels, segmenter.objects(labels))
    return scores


def train_segmenter(regions: Sequence[AnnotatedRegion], classes: Sequence[str], mpp: float,
                    params: SegmenterTrainingParams | None = None,
                    log: Callable[[str], None] | None = print) -> tuple[LoadedSegmenter, dict[str, Any]]:
    """Train a segmentation network (module docstring).

    Returns
    -------
    model : LoadedSegmenter
        Best epoch's network (CPU, eval mode) with its metadata (provenance still to be filled).
    info : dict
        ``best_epoch``, ``best_val_dice``, ``history``, ``validation``, ``device``, ``class_weights``,
        ``seconds``.
    """
    import time

    import torch
    from segmentation_models_pytorch.losses import DiceLoss

    from immunodig.structures.inference import StructureSegmenter
    from immunodig.structures.networks import build_network

    p = params or SegmenterTrainingParams()
    t0 = time.perf_counter()
    if p.num_threads:
        torch.set_num_threads(p.num_threads)
    torch.manual_seed(p.seed)
    n_labels = len(classes) + 1
    train, val, scheme = split_for_validation(regions, p.seed)
    sampler = PatchSampler(train, len(classes), p)
    device = p.device or ("cuda" if torch.cuda.is_available() else "cpu")
    net = build_network(p.architecture, p.encoder, n_labels, p.decoder_channels, p.encoder_weights).to(device)
    meta = segmenter_metadata(classes, mpp, p)
    weights = class_weights(train, n_labels)
    ce = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32, device=device),
                                   ignore_index=IGNORE_LABEL)
    dice_loss = DiceLoss("multiclass", ignore_index=IGNORE_LABEL)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    steps_per_epoch = max(1, p.patches_per_epoch // p.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=p.epochs * steps_per_epoch,
                                                pct_start=0.1)
    best: tuple[float, int, Any] = (-1.0, -1, None)
    history = []
    for epoch in range(p.epochs):
        rng = np.random.default_rng([p.seed, epoch])
        net.train()
        total = 0.0
        for _ in range(steps_per_epoch):
            pairs = [sampler.patch(rng) for _ in range(p.batch_size)]
            x = torch.from_numpy(np.stack([a for a, _ in pairs])).to(device).permute(0, 3, 1, 2).float() / 255
            y = torch.from_numpy(np.stack([b for _, b in pairs]).astype(np.int64)).to(device)
            out = net((x - mean) / std)
            loss = ce(out, y) + dice_loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        seg = StructureSegmenter(LoadedSegmenter(meta, net, Path("<training>"), "training"), device=device)
        val_dice = score_regions(seg, val, classes).summary()["dice"]
        val_dice = -1.0 if np.isnan(val_dice) else val_dice
        history.append({"epoch": epoch, "loss": total / steps_per_epoch, "val_dice": val_dice})
        if log:
            log(f"epoch {epoch:3d} loss {total / steps_per_epoch:.4f} val dice {val_dice:.3f}")
        if val_dice > best[0]:
            best = (val_dice, epoch, copy.deepcopy(net.state_dict()))
        elif epoch - best[1] >= p.patience:
            break
    net.load_state_dict(best[2])
    net = net.cpu().eval()
    info = {"best_epoch": best[1], "best_val_dice": best[0], "history": history, "validation": scheme,
            "device": device, "class_weights": weights.tolist(), "seconds": time.perf_counter() - t0,
            "epochs_run": len(history)}
    return LoadedSegmenter(meta, net, Path("<trained>"), "trained"), info


def training_provenance(train_dir: str | Path, regions: Sequence[AnnotatedRegion], params: SegmenterTrainingParams,
                        info: dict[str, Any]) -> dict[str, Any]:
    """What a trained model file records about its making."""
    import hashlib

    import segmentation_models_pytorch as smp
    import torch

    from immunodig import __version__
    from immunodig.provenance import file_sha256

    sources = sorted({r.source for r in regions})
    digest = hashlib.sha256("".join(file_sha256(s) for s in sources).encode()).hexdigest()
    return {"train_dir": Path(train_dir).name, "images": [s.name for s in sources], "images_sha256": digest,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(params).items()},
            "validation": info["validation"], "best_epoch": info["best_epoch"], "epochs_run": info["epochs_run"],
            "device": info["device"], "seconds": round(info["seconds"], 1), "code_version": __version__,
            "torch": torch.__version__, "segmentation_models_pytorch": smp.__version__,
            "machine": f"{platform.machine()} {platform.system()}",
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def train_segmenter_folder(train_dir: str | Path, out: str | Path, mpp: float, classes: Sequence[str] | None = None,
                           params: SegmenterTrainingParams | None = None, image_mpp: float | None = None,
                           licence: str = "unknown", log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Train on an annotated folder (:mod:`immunodig.structures.dataset`) and write the model file
    (:func:`~immunodig.structures.model_file.save_segmenter`) and ``<out>.metrics.json``.

    Returns
    -------
    dict
        The training summary written to ``<out>.metrics.json``.
    """
    from immunodig.io import write_json_atomic
    from immunodig.structures.dataset import load_annotated_folder
    from immunodig.structures.model_file import save_segmenter

    p = params or SegmenterTrainingParams()
    regions, classes = load_annotated_folder(train_dir, mpp, classes, image_mpp)
    model, info = train_segmenter(regions, classes, mpp, p, log=log)
    meta = model.metadata
    meta.provenance = training_provenance(train_dir, regions, p, info)
    meta.metrics = {"val_dice": info["best_val_dice"], "validation": info["validation"]}
    meta.licence = licence
    out = Path(out)
    save_segmenter(out, meta, model.network.state_dict())
    summary = {"model": out.name, "classes": list(classes), "mpp": mpp, "n_regions": len(regions), **info}
    write_json_atomic(out.with_suffix(".metrics.json"), summary)
    return summary
