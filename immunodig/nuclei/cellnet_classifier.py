"""Cell classifier from a small dense FCN trained on centre points (:mod:`immunodig.nuclei.cell_net`).

It classifies segmented nuclei (mean class probability over each nucleus) and can also detect
nuclei on its own (local maxima of its nucleus map). Not the default: on the CPU budget available
it scored below the patch ensemble (docs/nuclei.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.errors import ModelFileError, NotFittedError
from immunodig.nuclei.cell_net import NET_CLASSES, build_net, detect_points, make_targets, normalise, predict_maps
from immunodig.vocab import CELL_CLASSES

MODEL_FORMAT = "immunodig-cellnet-v1"


class CellNetClassifier:
    """Trained dense patch CNN (see :mod:`immunodig.nuclei.cell_net`).

    Parameters
    ----------
    width : int
        Channels at full resolution.
    input_mpp : float
        Resolution the network reads; other resolutions are resampled.
    threshold : float
        Nucleus-map threshold for :meth:`detect`.
    min_distance_um : float
        Minimum distance between detected centres.
    """

    def __init__(
        self, width: int = 16, input_mpp: float = 0.55, threshold: float = 0.5, min_distance_um: float = 2.5
    ) -> None:
        self.width = width
        self.input_mpp = input_mpp
        self.threshold = threshold
        self.min_distance_um = min_distance_um
        self.file_sha256: str | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """Cell classes it outputs."""
        return tuple(_to_cell_classes(np.arange(len(NET_CLASSES))))

    # ---- training -------------------------------------------------------------------------
    def fit(
        self,
        images: list,
        steps: int = 1500,
        batch_size: int = 8,
        crop_px: int = 96,
        lr: float = 3e-3,
        seed: int = 0,
        target_radius_px: float = 3.5,
        log_every: int = 0,
    ) -> "CellNetClassifier":
        """Train on :class:`immunodig.nuclei.datasets.PointImage` objects (centre points + labels).

        Labels follow ``CRC_CLASSES`` order (epithelial, inflammatory, fibroblast, others), which
        is ``NET_CLASSES`` order; -1 = detected but unclassified.
        """
        import torch
        from torch.nn import functional as F

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        data = []
        for im in images:
            rgb, pts = im.rgb, im.points_xy
            if abs(im.mpp - self.input_mpp) > 0.01:
                rgb, pts = _resample(rgb, im.mpp, self.input_mpp), pts * im.mpp / self.input_mpp
            nuc, cls = make_targets(rgb.shape[:2], pts, im.labels, target_radius_px)
            data.append((rgb, nuc, cls))
        counts = np.bincount(np.concatenate([im.labels[im.labels >= 0] for im in images]), minlength=len(NET_CLASSES))
        cls_w = torch.tensor((counts.sum() / np.maximum(counts, 1) / len(counts)) ** 0.5, dtype=torch.float32)
        net = build_net(self.width)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        net.train()
        t0 = time.time()
        for step in range(steps):
            xs, ns, cs = [], [], []
            for _ in range(batch_size):
                rgb, nuc, cls = data[rng.integers(len(data))]
                s = int(round(crop_px * rng.uniform(0.85, 1.15)))
                s = min(s, rgb.shape[0], rgb.shape[1])
                y, x = rng.integers(0, rgb.shape[0] - s + 1), rng.integers(0, rgb.shape[1] - s + 1)
                img, n, c = rgb[y : y + s, x : x + s], nuc[y : y + s, x : x + s], cls[y : y + s, x : x + s]
                k = rng.integers(4)
                img, n, c = np.rot90(img, k), np.rot90(n, k), np.rot90(c, k)
                if rng.random() < 0.5:
                    img, n, c = img[:, ::-1], n[:, ::-1], c[:, ::-1]
                img = _colour_jitter(img, rng)
                xt = normalise(img)
                nt = torch.from_numpy(np.ascontiguousarray(n)).float()[None, None]
                ct = torch.from_numpy(np.ascontiguousarray(c)).float()[None, None]
                if s != crop_px:
                    xt = F.interpolate(xt, size=(crop_px, crop_px), mode="bilinear", align_corners=False)
                    nt = F.interpolate(nt, size=(crop_px, crop_px), mode="nearest")
                    ct = F.interpolate(ct, size=(crop_px, crop_px), mode="nearest")
                xs.append(xt), ns.append(nt), cs.append(ct)
            x, n, c = torch.cat(xs), torch.cat(ns)[:, 0], torch.cat(cs)[:, 0].long()
            out = net(x)
            loss_n = F.binary_cross_entropy_with_logits(out[:, 0], n, pos_weight=torch.tensor(2.0))
            loss_c = F.cross_entropy(out[:, 1:], c, weight=cls_w, ignore_index=-1) if (c >= 0).any() else out.sum() * 0
            loss = loss_n + loss_c
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if log_every and (step % log_every == 0 or step == steps - 1):
                print(
                    f"step {step} loss_nucleus {loss_n.item():.3f} loss_class {loss_c.item():.3f} "
                    f"{time.time() - t0:.0f}s",
                    flush=True,
                )
        net.eval()
        self.net_ = net
        self.metadata_ = {
            "format": MODEL_FORMAT,
            "classes": list(NET_CLASSES),
            "input_mpp": self.input_mpp,
            "normalisation": "x/255, then (x-0.5)/0.25 per RGB channel",
            "width": self.width,
            "threshold": self.threshold,
            "min_distance_um": self.min_distance_um,
            "train": {
                "n_images": len(images),
                "n_labelled_nuclei": int(counts.sum()),
                "steps": steps,
                "batch_size": batch_size,
                "crop_px": crop_px,
                "seed": seed,
                "target_radius_px": target_radius_px,
            },
        }
        return self

    # ---- inference ------------------------------------------------------------------------
    def _check(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError("CellNetClassifier is not fitted; call fit() or load_cell_classifier()")

    def predict_maps(self, rgb: np.ndarray, mpp: float) -> np.ndarray:
        """Per-pixel probabilities (1 + C, H, W) at the image's own resolution."""
        self._check()
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads()))
        if abs(mpp - self.input_mpp) / self.input_mpp > 0.1:
            small = _resample(rgb, mpp, self.input_mpp)
            maps = predict_maps(self.net_, small)
            from skimage.transform import resize

            return resize(maps, (maps.shape[0], *rgb.shape[:2]), order=1, preserve_range=True).astype(np.float32)
        return predict_maps(self.net_, rgb)

    def detect(self, rgb: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect and classify nuclei: (xy px float (N, 2), class str (N,), class prob (N, C))."""
        maps = self.predict_maps(rgb, mpp)
        dist_px = max(1, int(round(self.min_distance_um / mpp)))
        xy, cls, prob = detect_points(maps, dist_px, self.threshold)
        return xy, np.asarray(_to_cell_classes(cls)), prob

    def classify_nuclei(self, rgb: np.ndarray, labels: np.ndarray, mpp: float,
                        ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Class of each instance 1..N of ``labels`` (or of ``ids``): mean class probability over
        the nucleus.

        Returns (cell_class str, cell_prob float), one per classified instance.
        """
        if ids is not None:
            cls, prob = self.classify_nuclei(rgb, labels, mpp)
            return cls[np.asarray(ids, int) - 1], prob[np.asarray(ids, int) - 1]
        n = int(labels.max())
        if n == 0:
            return np.zeros(0, dtype=str), np.zeros(0)
        maps = self.predict_maps(rgb, mpp)[1:]
        flat = labels.ravel()
        area = np.bincount(flat, minlength=n + 1)[1:].astype(float)
        mean = (
            np.stack([np.bincount(flat, weights=m.ravel(), minlength=n + 1)[1:] for m in maps], 1)
            / np.maximum(area, 1)[:, None]
        )
        idx = mean.argmax(1)
        return np.asarray(_to_cell_classes(idx)), mean[np.arange(n), idx]

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Write weights + metadata (JSON-safe; e.g. ``training_data_licence``) to one file."""
        self._check()
        import torch

        meta = {**self.metadata_, **metadata}
        state = {k: v.half() if v.is_floating_point() else v for k, v in self.net_.state_dict().items()}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"metadata": json.dumps(meta), "state_dict": state}, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CellNetClassifier":
        """Read a file written by :meth:`save`."""
        import torch

        path = Path(path)
        if not path.exists():
            raise ModelFileError(f"{path}: cell classifier file not found; train one with `train-cell-classifier`")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            meta = json.loads(blob["metadata"])
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise ModelFileError(f"{path}: not a readable immunodig cell classifier ({exc})") from exc
        if meta.get("format") != MODEL_FORMAT:
            raise ModelFileError(f"{path}: format {meta.get('format')!r}, expected {MODEL_FORMAT!r}")
        model = cls(meta["width"], meta["input_mpp"], meta["threshold"], meta["min_distance_um"])
        net = build_net(meta["width"])
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
        net.eval()
        model.net_, model.metadata_ = net, meta
        from immunodig.nuclei.cell_classifier import file_sha256

        model.file_sha256 = file_sha256(path)
        return model


def _to_cell_classes(idx: np.ndarray) -> list[str]:
    mapping = {"epithelial": "epithelial", "lymphocyte": "lymphocyte", "fibroblast": "fibroblast", "other": "other"}
    names = [mapping[c] for c in NET_CLASSES]
    assert set(names) <= set(CELL_CLASSES)
    return [names[i] for i in np.asarray(idx, dtype=int)]


def _resample(rgb: np.ndarray, mpp_in: float, mpp_out: float) -> np.ndarray:
    from skimage.transform import rescale

    out = rescale(rgb, mpp_in / mpp_out, order=1, channel_axis=2, preserve_range=True, anti_aliasing=mpp_out > mpp_in)
    return np.clip(out, 0, 255).astype(np.uint8)


def _colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale haematoxylin / eosin OD by ±10 % and brightness by ±8 % (stain variation)."""
    from immunodig.slides.stain import hed_to_rgb, rgb_to_hed

    if rng.random() < 0.2:
        return np.ascontiguousarray(img)
    hed = rgb_to_hed(np.ascontiguousarray(img))
    hed[..., 0] *= rng.uniform(0.9, 1.1)
    hed[..., 1] *= rng.uniform(0.9, 1.1)
    out = hed_to_rgb(hed) * rng.uniform(0.92, 1.08) * 255
    return np.clip(out, 0, 255).astype(np.uint8)
