"""Running a structure segmenter on an image: tiles with overlap, blended, then objects.

Tiles of ``tile_size_px`` (the model file's) overlap by a quarter of their edge; each tile's
probabilities are weighted by a window that falls towards its border, so seams vanish and the
result does not depend on where tiles start. Images smaller than a tile are padded (reflect).
A class mask becomes objects by connected components, or by distance-transform watershed
(touching nuclei; :func:`immunodig.nuclei.classical.split_instances`) when the model says
``extra.instances = "watershed"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from immunodig.structures.model_file import LoadedSegmenter, load_segmenter

#: Tiles per forward pass.
BATCH_TILES = 4


def _window(size: int) -> np.ndarray:
    ramp = np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5) / (size / 2)
    w = np.clip(ramp, 0.05, 1.0)
    return np.outer(w, w).astype(np.float32)


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


class StructureSegmenter:
    """A loaded structure-segmentation network (see :mod:`immunodig.structures.model_file`).

    Parameters
    ----------
    model : LoadedSegmenter or path
    device : str, optional
        ``None`` picks CUDA when available.
    """

    name = "structure"

    def __init__(self, model: LoadedSegmenter | str | Path, device: str | None = None) -> None:
        import torch

        self.model = model if isinstance(model, LoadedSegmenter) else load_segmenter(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.network = self.model.network.to(self.device).eval()
        meta = self.model.metadata
        self.mpp = float(meta.input_mpp)
        self.tile_px = int(meta.tile_size_px)
        self.classes = self.model.structure_classes

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        meta = self.model.metadata
        mean = np.asarray(meta.mean, np.float32)
        std = np.asarray(meta.std, np.float32)
        x = (batch.astype(np.float32) / 255.0 - mean) / std
        with torch.inference_mode():
            out = self.network(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(self.device)).float()
            if meta.output == "logits":
                out = torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)
        return out.cpu().numpy()

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """Per-label probabilities ``(1 + K, H, W)`` float32 of a uint8 image at the model's mpp:
        row 0 background, row k the k-th of :attr:`classes`."""
        h, w = rgb.shape[:2]
        t = self.tile_px
        ph, pw = max(0, t - h), max(0, t - w)
        img = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else rgb
        hh, ww = img.shape[:2]
        step = max(1, t - t // 4)
        win = _window(t)
        acc = None
        weight = np.zeros((hh, ww), np.float32)
        coords = [(y, x) for y in _starts(hh, t, step) for x in _starts(ww, t, step)]
        for i in range(0, len(coords), BATCH_TILES):
            chunk = coords[i:i + BATCH_TILES]
            out = self._forward(np.stack([img[y:y + t, x:x + t] for y, x in chunk]))
            if acc is None:
                acc = np.zeros((out.shape[1], hh, ww), np.float32)
            for (y, x), o in zip(chunk, out):
                acc[:, y:y + t, x:x + t] += o * win
                weight[y:y + t, x:x + t] += win
        prob = (acc / weight)[:, :h, :w]
        bg = self.model.background_channel
        if bg is None:  # one sigmoid channel
            return np.concatenate([1.0 - prob, prob]).astype(np.float32)
        order = [bg] + [i for i in range(prob.shape[0]) if i != bg]
        return prob[order]

    def predict(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (uint8, 0 background, k the k-th class) and the winning probability, at the model's mpp."""
        prob = self.probabilities(rgb)
        labels = prob.argmax(axis=0).astype(np.uint8)
        return labels, np.take_along_axis(prob, labels[None].astype(np.int64), 0)[0]

    def objects(self, labels: np.ndarray) -> np.ndarray:
        """Instance ids (int32, 0 none) of a label image: one object per connected region of a class
        (4-connectivity), split by watershed when the model asks for it; objects smaller than
        ``extra.min_object_um2`` are dropped."""
        from scipy import ndimage as ndi

        extra = self.model.metadata.extra
        min_px = float(extra.get("min_object_um2", 0.0)) / self.mpp ** 2
        out = np.zeros(labels.shape, np.int32)
        next_id = 0
        for k in range(1, len(self.classes) + 1):
            mask = labels == k
            if not mask.any():
                continue
            if extra.get("instances", "components") == "watershed":
                from immunodig.nuclei.classical import split_instances

                inst = split_instances(mask, self.mpp, float(extra.get("marker_h_um", 0.5)),
                                       float(extra.get("min_object_um2", 0.0)), float("inf"))
            else:
                inst, _ = ndi.label(mask)
                if min_px > 0:
                    sizes = np.bincount(inst.ravel())
                    small = sizes < min_px
                    small[0] = False
                    inst[small[inst]] = 0
            keep = inst > 0
            _, inv = np.unique(inst[keep], return_inverse=True)
            out[keep] = next_id + 1 + inv.reshape(-1)
            next_id = int(out.max())
        return out

    def segment(self, rgb: np.ndarray, mpp: float) -> np.ndarray:
        """Instances of every structure class (int32) at the input's resolution: the nuclei
        stage's :class:`~immunodig.nuclei.segmenter.Segmenter` interface (e.g. a lymphocyte model)."""
        from immunodig.structures.dataset import resize_rgb

        work = resize_rgb(rgb, _scaled_shape(rgb.shape[:2], mpp / self.mpp))
        inst = self.objects(self.predict(work)[0])
        return resize_labels(inst, rgb.shape[:2]).astype(np.int32)


def _scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> Any:
    """Nearest-neighbour resize of a label image."""
    if labels.shape == tuple(shape):
        return labels
    rows = np.minimum((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0], labels.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1], labels.shape[1] - 1).astype(int)
    return labels[rows[:, None], cols[None, :]]
