"""Small CNN on nucleus-centred patches (32 x 32 px at 0.5 µm/px = 16 µm of context).

A lymphocyte is told from a fibroblast, a plasma cell or a tangentially cut tumour nucleus by its
chromatin texture and its surroundings more than by its outline; this network reads both. Six
3x3 convolutions (24-48-64 channels, batch norm, two max-pools), global average pooling and one
linear layer (~0.1 M parameters). Input: RGB resampled to :data:`PATCH_MPP`, ``(x/255 - 0.6)/0.2``.
Training: patches are cut :data:`TRAIN_SHIFT_PX` px larger on every side and cropped at a random
offset (centring error of the segmentation), rot90 / flip augmentation, stain jitter in
haematoxylin-eosin-DAB optical-density space (each stain of each patch scaled by 1 ± ``HED_SIGMA``
and shifted by ± ``HED_SIGMA`` x its standard deviation in the patch; Tellez et al., Med Image Anal
2019) followed by per-channel RGB gain (±15 %) and offset (±0.06 of the intensity range), class-weighted cross entropy
(weights ∝ 1/sqrt(frequency)), AdamW with a one-cycle schedule. Prediction averages the four
rot90 views (of the mirrored patch with ``mirror=True``, so that two networks of an ensemble see
all eight symmetries between them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Patch side in pixels and its resolution.
PATCH_PX = 32
PATCH_MPP = 0.5
#: Training patches are this many pixels larger on every side, for random-shift augmentation.
TRAIN_SHIFT_PX = 2
#: Strength of the HED stain jitter during training.
HED_SIGMA = 0.2


def nucleus_patches(rgb: np.ndarray, mpp: float, xy_px: np.ndarray, size: int = PATCH_PX) -> np.ndarray:
    """uint8 patches (N, size, size, 3) centred on ``xy_px`` (image pixels at ``mpp``).

    The image is resampled to :data:`PATCH_MPP` when ``mpp`` differs by more than 2 %; borders
    are reflected. ``size`` must be even.
    """
    scale = mpp / PATCH_MPP
    img = rgb
    if abs(scale - 1) > 0.02:
        from skimage.transform import rescale

        img = np.clip(
            rescale(rgb, scale, order=1, channel_axis=2, preserve_range=True, anti_aliasing=scale < 1), 0, 255
        ).astype(np.uint8)
    if not len(xy_px):
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    half = size // 2
    pad = np.pad(img, ((size, size), (size, size), (0, 0)), mode="reflect")
    c = np.round(np.asarray(xy_px) * scale).astype(int) + size
    c[:, 0] = np.clip(c[:, 0], half, pad.shape[1] - half)
    c[:, 1] = np.clip(c[:, 1], half, pad.shape[0] - half)
    iy = c[:, 1, None] + np.arange(-half, half)[None, :]
    ix = c[:, 0, None] + np.arange(-half, half)[None, :]
    return pad[iy[:, :, None], ix[:, None, :]]


def build_patch_net(n_classes: int) -> Any:
    """The patch CNN (torch ``nn.Sequential``), untrained."""
    from torch import nn

    def block(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    return nn.Sequential(
        block(3, 24),
        block(24, 24),
        nn.MaxPool2d(2),
        block(24, 48),
        block(48, 48),
        nn.MaxPool2d(2),
        block(48, 64),
        block(64, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(64, n_classes),
    )


def _to_tensor(patches: np.ndarray | Any) -> Any:
    """Network input (B, 3, H, W) from RGB patches (B, H, W, 3) in 0..255 (uint8 array or float tensor)."""
    import torch

    x = patches if isinstance(patches, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(patches)).float()
    return (x.permute(0, 3, 1, 2) / 255.0 - 0.6) / 0.2


def _centre_crop(patches: np.ndarray, offset: tuple[int, int] | None = None) -> np.ndarray:
    """The :data:`PATCH_PX` crop of larger patches, at ``offset`` (row, col) or centred."""
    m = (patches.shape[1] - PATCH_PX) // 2
    r, c = offset if offset is not None else (m, m)
    return patches[:, r : r + PATCH_PX, c : c + PATCH_PX]


def train_patch_net(
    patches: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    epochs: float = 32.0,
    batch_size: int = 128,
    lr: float = 4e-3,
    seed: int = 0,
) -> Any:
    """Train :func:`build_patch_net` on uint8 patches with integer labels 0..n_classes-1.

    Patches larger than :data:`PATCH_PX` (e.g. ``PATCH_PX + 2 * TRAIN_SHIFT_PX``) are cropped
    at a random offset in every batch.
    """
    import torch
    from torch.nn import functional as F

    from immunodig.slides.stain import hed_jitter

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    weight = torch.tensor((counts.sum() / np.maximum(counts, 1) / n_classes) ** 0.5, dtype=torch.float32)
    net = build_patch_net(n_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=lr / 2, weight_decay=1e-4)
    steps = max(1, int(epochs * len(patches) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    y_all = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    net.train()
    for _ in range(steps):
        i = rng.integers(0, len(patches), batch_size)
        xb = _centre_crop(patches[i], tuple(rng.integers(0, patches.shape[1] - PATCH_PX + 1, 2)))
        xb = np.rot90(xb, int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            xb = xb[:, :, ::-1]
        x = _to_tensor(hed_jitter(xb, rng, HED_SIGMA, HED_SIGMA, bias_per_std=True))
        x = x * torch.empty(len(i), 3, 1, 1).uniform_(0.85, 1.15) + torch.empty(len(i), 3, 1, 1).uniform_(-0.3, 0.3)
        loss = F.cross_entropy(net(x), y_all[i], weight=weight, label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def inference_net(net: Any) -> Any:
    """The same network, faster on CPU: batch norm folded into the convolutions, channels-last.

    Folding uses ``torch.fx`` (exact up to float rounding, ~1e-8); channels-last lets oneDNN pick
    its direct convolution kernels. With batches of 128 patches about 1.8x faster than the
    training form on one core (``benchmarks/bench_patch_net.py``, docs/benchmarks.md).
    """
    import copy

    import torch
    from torch.fx.experimental.optimization import fuse

    return fuse(copy.deepcopy(net).eval()).to(memory_format=torch.channels_last)


def predict_patch_net(net: Any, patches: np.ndarray, mirror: bool = False, batch_size: int = 128) -> np.ndarray:
    """Class probabilities (N, C), mean over the four rot90 views (of the mirrored patches with ``mirror``).

    ``net`` is the trained network or its :func:`inference_net` form. Patches larger than
    :data:`PATCH_PX` are centre-cropped.
    """
    import torch
    from torch.nn import functional as F

    if not len(patches):
        with torch.no_grad():
            n_out = net(torch.zeros(1, 3, PATCH_PX, PATCH_PX)).shape[1]
        return np.zeros((0, n_out))
    out = []
    with torch.no_grad():
        for s in range(0, len(patches), batch_size):
            p = _centre_crop(patches[s : s + batch_size])
            if mirror:
                p = p[:, :, ::-1]
            views = (_to_tensor(np.rot90(p, k, axes=(1, 2))).contiguous(memory_format=torch.channels_last)
                     for k in range(4))
            out.append(sum(F.softmax(net(v), 1).numpy() for v in views) / 4)
    return np.concatenate(out)
