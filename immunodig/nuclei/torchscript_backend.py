"""TorchScript backend: run the lab's own segmentation networks without code changes.

Contract
--------
* File: a TorchScript module (``torch.jit.save``). Its settings come from, in order of precedence,
  the keyword arguments of :class:`TorchScriptSegmenter`, a JSON file embedded at save time as
  ``_extra_files={"immunodig.json": ...}``, and the defaults below.
* Input: float32 tensor ``(1, 3, H, W)``, RGB, the image resampled to ``input_mpp`` (default
  0.5 µm/px), normalised by ``normalisation``:

  - ``"unit"`` (default): ``x / 255``;
  - ``"imagenet"``: ``(x / 255 - mean) / std`` with ImageNet mean/std;
  - ``"symmetric"``: ``x / 127.5 - 1``.

  H and W are padded (reflect) to a multiple of ``pad_multiple`` (default 32) and cropped back.
* Output, by ``output``:

  - ``"semantic"`` (default): ``(1, C, H, W)``. C = 1: a logit, foreground = sigmoid > ``threshold``;
    C >= 2: logits, foreground = softmax channel ``foreground_channel`` (default 1) >
    ``threshold``. The foreground (e.g. a lymphocyte mask) is split into instances by
    distance-transform watershed with the classical backend's parameters.
  - ``"instance"``: ``(1, 1, H, W)`` or ``(1, H, W)`` integer instance ids (0 = background).

* The result is resampled back to the caller's mpp (nearest) and returned as int32 instances.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.errors import ConfigError, ModelFileError

_DEFAULTS: dict[str, Any] = {
    "input_mpp": 0.5,
    "normalisation": "unit",
    "output": "semantic",
    "foreground_channel": 1,
    "threshold": 0.5,
    "pad_multiple": 32,
    "marker_h_um": 0.5,
    "min_area_um2": 8.0,
    "max_area_um2": 250.0,
}
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class TorchScriptSegmenter:
    """Segment nuclei with a TorchScript network (see the module docstring for the contract).

    Parameters
    ----------
    model : str or Path
        TorchScript file.
    **settings
        Any key of the contract (``input_mpp``, ``normalisation``, ``output``,
        ``foreground_channel``, ``threshold``, ``pad_multiple``, ``marker_h_um``,
        ``min_area_um2``, ``max_area_um2``).
    """

    name = "torchscript"

    def __init__(self, model: str | Path, **settings: Any) -> None:
        unknown = set(settings) - set(_DEFAULTS)
        if unknown:
            raise ConfigError(f"torchscript backend: unknown settings {sorted(unknown)}; allowed: {sorted(_DEFAULTS)}")
        self.model = Path(model)
        self._overrides = settings
        self._net = None
        self.settings: dict[str, Any] = {}

    def _load(self):
        if self._net is not None:
            return self._net
        import torch

        if not self.model.exists():
            raise ModelFileError(f"{self.model}: TorchScript model file not found")
        extra = {"immunodig.json": ""}
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # jit.load deprecation notice
                net = torch.jit.load(str(self.model), map_location="cpu", _extra_files=extra)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise ModelFileError(
                f"{self.model}: not a TorchScript file ({exc}); export with torch.jit.script/trace + torch.jit.save"
            ) from exc
        embedded = json.loads(extra["immunodig.json"]) if extra["immunodig.json"] else {}
        self.settings = {**_DEFAULTS, **{k: v for k, v in embedded.items() if k in _DEFAULTS}, **self._overrides}
        if self.settings["normalisation"] not in ("unit", "imagenet", "symmetric"):
            raise ConfigError(
                f"{self.model}: normalisation {self.settings['normalisation']!r} not one of unit, imagenet, symmetric"
            )
        if self.settings["output"] not in ("semantic", "instance"):
            raise ConfigError(f"{self.model}: output {self.settings['output']!r} not one of semantic, instance")
        net.eval()
        if torch.cuda.is_available():
            net = net.cuda()
        self._net = net
        return net

    def _normalise(self, rgb: np.ndarray) -> np.ndarray:
        x = rgb.astype(np.float32) / 255.0
        mode = self.settings["normalisation"]
        if mode == "imagenet":
            x = (x - _IMAGENET_MEAN) / _IMAGENET_STD
        elif mode == "symmetric":
            x = x * 2.0 - 1.0
        return x

    def segment(self, rgb: np.ndarray, mpp: float) -> np.ndarray:
        """Segment nuclei; returns int32 instance labels at the input's resolution."""
        import torch
        from skimage.transform import resize

        from immunodig.nuclei.classical import filter_sizes, split_instances

        net = self._load()
        s = self.settings
        h, w = rgb.shape[:2]
        scale = mpp / s["input_mpp"]
        work = rgb
        if abs(scale - 1) > 1e-3:
            shape = (max(1, round(h * scale)), max(1, round(w * scale)))
            work = np.clip(resize(rgb, shape, order=1, preserve_range=True, anti_aliasing=scale < 1), 0, 255).astype(
                np.uint8
            )
        wh, ww = work.shape[:2]
        m = int(s["pad_multiple"])
        x = np.pad(self._normalise(work), ((0, (-wh) % m), (0, (-ww) % m), (0, 0)), mode="reflect")
        device = next(iter(net.parameters()), torch.empty(0)).device
        with torch.inference_mode():
            out = net(torch.from_numpy(x).permute(2, 0, 1)[None].to(device)).float().cpu().numpy()
        out = out.reshape((-1, *out.shape[-2:]))[:, :wh, :ww]
        in_mpp = s["input_mpp"]
        if s["output"] == "instance":
            inst = out[0].round().astype(np.int32)
            if inst.shape != (h, w):
                inst = resize(inst, (h, w), order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
            return filter_sizes(inst, mpp, s["min_area_um2"], s["max_area_um2"])
        if out.shape[0] == 1:
            prob = 1.0 / (1.0 + np.exp(-out[0]))
        else:
            e = np.exp(out - out.max(axis=0, keepdims=True))
            prob = (e / e.sum(axis=0, keepdims=True))[int(s["foreground_channel"])]
        fg = prob > s["threshold"]
        inst = split_instances(fg, in_mpp, s["marker_h_um"], s["min_area_um2"], s["max_area_um2"])
        if inst.shape != (h, w):
            inst = resize(inst, (h, w), order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
            inst = filter_sizes(inst, mpp, s["min_area_um2"], s["max_area_um2"])
        return inst
