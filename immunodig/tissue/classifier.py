"""Tile classifiers behind one interface, and ``load_tissue_classifier``.

Every classifier maps uint8 RGB tiles ``(N, H, W, 3)`` to probabilities ``(N, 9)`` in
``KATHER_CLASSES`` order. Work is split in two steps so the inference engine can run the first in
DataLoader worker processes:

- :meth:`TileClassifier.prepare` turns one tile into the model's input (identity for CNNs, the
  hand-crafted feature vector for feature models);
- :meth:`TileClassifier.predict_prepared` maps a stacked batch of prepared tiles to probabilities.

Example
-------
>>> clf = load_tissue_classifier()                      # the shipped default   # doctest: +SKIP
>>> clf.predict_proba(tiles).shape                                               # doctest: +SKIP
(N, 9)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from immunodig.errors import ModelFileError
from immunodig.tissue.checkpoint import (
    LoadedModelFile,
    ModelMetadata,
    kather_index_map,
    load_model_file,
    model_content_sha256,
)
from immunodig.vocab import KATHER_CLASSES

#: File name of the shipped default model inside ``immunodig/assets/tissue/``.
DEFAULT_MODEL_NAME = "kather9_default.pt"



def default_model_path() -> Path:
    """Path of the shipped default model file."""
    return Path(str(resources.files("immunodig") / "assets" / "tissue" / DEFAULT_MODEL_NAME))


class TileClassifier(ABC):
    """A Kather-9 tile classifier loaded from a model file.

    Attributes
    ----------
    metadata : ModelMetadata
        Everything the file says about itself.
    class_names : tuple of str
        Output columns of :meth:`predict_proba` (always ``KATHER_CLASSES``).
    model_class_names : tuple of str
        The file's own class names, in its output order.
    input_mpp : float
        Microns per pixel the tiles must be read at.
    tile_size_px : int
        Tile edge in pixels.
    file_sha256 : str
        Content hash of the model file and its side-car JSON (enters the run key).
    """

    def __init__(self, loaded: LoadedModelFile) -> None:
        self.metadata: ModelMetadata = loaded.metadata
        self.path = loaded.path
        self.class_names: tuple[str, ...] = KATHER_CLASSES
        self.model_class_names = tuple(loaded.metadata.class_names)
        self.input_mpp = float(loaded.metadata.input_mpp)
        self.tile_size_px = int(loaded.metadata.tile_size_px)
        self.file_sha256 = model_content_sha256(loaded.path)
        self._to_kather = kather_index_map(self.model_class_names, str(loaded.path))
        self.device = "cpu"

    # -- the two-step contract -------------------------------------------------------------
    @property
    @abstractmethod
    def prepare_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """Module-level (picklable) function turning one uint8 tile ``(H, W, 3)`` into the model
        input; the inference engine runs it in DataLoader worker processes."""

    def prepare(self, tile: np.ndarray) -> np.ndarray:
        """Model input of one uint8 tile ``(H, W, 3)``."""
        return self.prepare_fn(tile)

    def predict_batch(self, batch) -> np.ndarray:
        """Like :meth:`predict_prepared` for a torch tensor of prepared inputs."""
        return self.predict_prepared(batch.numpy())

    @abstractmethod
    def _predict_model_outputs(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, n_model_classes)`` in the file's class order."""

    def to(self, device: str) -> "TileClassifier":
        """Move the model to ``device`` (no-op for CPU-only models); returns ``self``."""
        self.device = str(device)
        return self

    def predict_prepared(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``float32 (N, 9)`` in ``KATHER_CLASSES`` order for prepared inputs.

        Model classes that map to the same Kather class (e.g. "debris" and "necrosis") are
        summed; Kather classes the model lacks get probability 0.
        """
        return self._to_kather_columns(np.asarray(self._predict_model_outputs(batch), dtype=np.float32))

    def _to_kather_columns(self, p: np.ndarray) -> np.ndarray:
        if p.ndim != 2 or p.shape[1] != len(self._to_kather):
            raise ModelFileError(
                f"{self.path}: the model gives outputs of shape {tuple(p.shape)} but its metadata "
                f"names {len(self._to_kather)} classes; give one class name per output")
        out = np.zeros((p.shape[0], len(KATHER_CLASSES)), dtype=np.float32)
        np.add.at(out, (slice(None), self._to_kather), p)
        return out

    def check_tiles(self, tiles: np.ndarray) -> None:
        """Raise :class:`TileSizeError` unless ``tiles`` is uint8 ``(N, T, T, 3)``, T = tile size."""
        from immunodig.slides.tiling import check_tile_batch

        check_tile_batch(tiles, self.tile_size_px, self.input_mpp, self.path.name)

    def predict_proba(self, tiles: np.ndarray) -> np.ndarray:
        """Class probabilities ``float32 (N, 9)`` in ``KATHER_CLASSES`` order."""
        tiles = np.asarray(tiles)
        self.check_tiles(tiles)
        if len(tiles) == 0:
            return np.zeros((0, len(KATHER_CLASSES)), dtype=np.float32)
        return self.predict_prepared(np.stack([self.prepare(t) for t in tiles]))

    def predict(self, tiles: np.ndarray) -> list[str]:
        """Most probable Kather class of each tile."""
        return [KATHER_CLASSES[i] for i in self.predict_proba(tiles).argmax(axis=1)]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.metadata.architecture}, {self.path.name}, "
                f"{self.tile_size_px} px @ {self.input_mpp} µm/px)")


class TorchTileClassifier(TileClassifier):
    """A CNN (state dict of any layout in :mod:`immunodig.tissue.layouts`, or TorchScript);
    channels-last, ``inference_mode``, autocast to bf16 on CUDA."""

    def __init__(self, loaded: LoadedModelFile) -> None:
        import torch

        super().__init__(loaded)
        meta = loaded.metadata
        if loaded.scripted is not None:
            self.model = loaded.scripted
        else:
            from immunodig.tissue.layouts import reconstruct

            rebuilt = reconstruct(meta.architecture, len(meta.class_names), loaded.state_dict or {},
                                  meta.layout, meta.extra, str(self.path))
            self.model = rebuilt.network
            meta.layout, meta.output = rebuilt.layout, rebuilt.output
        self.model.eval()
        self._mean = torch.tensor(meta.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(meta.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0

    def to(self, device: str) -> "TorchTileClassifier":
        import torch

        self.device = str(device)
        self.model = self.model.to(device)
        if not isinstance(self.model, torch.jit.ScriptModule):
            self.model = self.model.to(memory_format=torch.channels_last)
        self._mean, self._std = self._mean.to(device), self._std.to(device)
        return self

    @property
    def prepare_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        return _as_uint8

    def predict_batch(self, batch) -> np.ndarray:
        """Probabilities (N, 9) of a uint8 NHWC torch batch (pinned memory is used as is)."""
        return self._to_kather_columns(self.forward_uint8(batch).cpu().numpy())

    def forward_uint8(self, batch):
        """Probabilities (torch tensor, float32) for a uint8 NHWC torch batch on any device."""
        import torch

        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.device.startswith("cuda"):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = self.model(x)
            else:
                out = self.model(x)
            out = out.float()
            return torch.softmax(out, dim=1) if self.metadata.output == "logits" else out

    def _predict_model_outputs(self, batch: np.ndarray) -> np.ndarray:
        import torch

        return self.forward_uint8(torch.from_numpy(np.ascontiguousarray(batch))).cpu().numpy()

    def raw_outputs(self, tiles: np.ndarray) -> np.ndarray:
        """The network's own outputs (before any softmax added here) for uint8 tiles, on the CPU."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.uint8)).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            return self.model((x - self._mean.cpu()) / self._std.cpu()).float().numpy()


class FeatureTileClassifier(TileClassifier):
    """Hand-crafted features (:mod:`immunodig.tissue.handcrafted`) with a stored head.

    Heads: ``features-logistic`` (standardisation + multinomial logistic regression, stored as
    arrays) and ``features-xgboost`` (gradient boosting, XGBoost's JSON model stored as bytes).
    """

    def __init__(self, loaded: LoadedModelFile) -> None:
        from immunodig.tissue.handcrafted import FEATURE_VERSION, feature_names

        super().__init__(loaded)
        meta, sd = loaded.metadata, loaded.state_dict or {}
        version = int(meta.extra.get("feature_version", -1))
        if version != FEATURE_VERSION:
            raise ModelFileError(
                f"{self.path}: trained on hand-crafted feature version {version}, this immunodig "
                f"computes version {FEATURE_VERSION}; retrain with train-tissue-classifier")
        n_feat = len(feature_names())
        self.scaler_mean = sd["scaler_mean"].numpy().astype(np.float64)
        self.scaler_scale = sd["scaler_scale"].numpy().astype(np.float64)
        if self.scaler_mean.shape != (n_feat,):
            raise ModelFileError(f"{self.path}: head expects {self.scaler_mean.shape[0]} features, "
                                 f"the feature extractor gives {n_feat}")
        self.head = meta.architecture.removeprefix("features-")
        if self.head == "logistic":
            self.coef = sd["coef"].numpy().astype(np.float64)
            self.intercept = sd["intercept"].numpy().astype(np.float64)
        elif self.head == "xgboost":
            import xgboost as xgb

            self.booster = xgb.Booster()
            self.booster.load_model(bytearray(sd["booster_json"].numpy().tobytes()))
        else:
            raise ModelFileError(f"{self.path}: unknown feature head {meta.architecture!r}; "
                                 "use features-logistic or features-xgboost")

    @property
    def prepare_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        from immunodig.tissue.handcrafted import tile_features

        return tile_features

    def _predict_model_outputs(self, batch: np.ndarray) -> np.ndarray:
        z = (np.asarray(batch, dtype=np.float64) - self.scaler_mean) / self.scaler_scale
        z = np.nan_to_num(z)
        if self.head == "logistic":
            logits = z @ self.coef.T + self.intercept
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            return p / p.sum(axis=1, keepdims=True)
        import xgboost as xgb

        return self.booster.predict(xgb.DMatrix(z.astype(np.float32)))


class OnnxTileClassifier(TileClassifier):
    """An ONNX model run by onnxruntime on the CPU (whatever device is asked for).

    The model takes a float32 NCHW batch normalised with the metadata's mean/std and returns
    logits (or probabilities with ``output = "probabilities"``). A fixed batch dimension is
    honoured by running that many tiles per call.
    """

    def __init__(self, loaded: LoadedModelFile) -> None:
        super().__init__(loaded)
        self.session = loaded.onnx_session
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape)
        dims = [d for d in self.input_shape[2:] if isinstance(d, int)]
        if dims and any(d != self.tile_size_px for d in dims):
            raise ModelFileError(
                f"{self.path}: the ONNX input is {self.input_shape} but the metadata says "
                f"tile_size_px={self.tile_size_px}; set tile_size_px to the model's input size")
        meta = loaded.metadata
        self._mean = np.asarray(meta.mean, dtype=np.float32).reshape(1, 3, 1, 1) * np.float32(255)
        self._std = np.asarray(meta.std, dtype=np.float32).reshape(1, 3, 1, 1) * np.float32(255)

    def to(self, device: str) -> "OnnxTileClassifier":
        """ONNX models always run on the CPU; returns ``self``."""
        self.device = "cpu"
        return self

    @property
    def prepare_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        return _as_uint8

    def raw_outputs(self, tiles: np.ndarray) -> np.ndarray:
        """The ONNX graph's own outputs (before any softmax added here) for uint8 tiles."""
        x = (np.asarray(tiles, dtype=np.float32).transpose(0, 3, 1, 2) - self._mean) / self._std
        x = np.ascontiguousarray(x, dtype=np.float32)
        step = self.input_shape[0] if isinstance(self.input_shape[0], int) else len(x)
        return np.concatenate([self.session.run(None, {self.input_name: x[i:i + step]})[0]
                               for i in range(0, len(x), max(step, 1))]).astype(np.float32)

    def _predict_model_outputs(self, batch: np.ndarray) -> np.ndarray:
        out = self.raw_outputs(batch)
        if self.metadata.output == "probabilities":
            return out
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        return out / out.sum(axis=1, keepdims=True)


def _as_uint8(tile: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(tile, dtype=np.uint8)


def classifier_from_loaded(loaded: LoadedModelFile) -> TileClassifier:
    """Pick the implementation for a loaded model file."""
    if loaded.metadata.architecture.startswith("features-"):
        return FeatureTileClassifier(loaded)
    if loaded.onnx_session is not None:
        return OnnxTileClassifier(loaded)
    return TorchTileClassifier(loaded)


def load_tissue_classifier(path: str | Path | None = None, device: str = "cpu") -> TileClassifier:
    """Load a tile classifier from a model file; ``None`` loads the shipped default.

    Parameters
    ----------
    path : str or Path, optional
        immunodig checkpoint, or a foreign file with side-car JSON: a state dict of a TIAToolbox,
        torchvision, timm or Lightning model, a TorchScript or an ONNX file (docs/tissue.md).
    device : str
        ``cpu`` or ``cuda[:i]`` (CNNs only; feature models always run on the CPU).

    Raises
    ------
    ModelFileError, UnknownClassError
        See :func:`immunodig.tissue.checkpoint.load_model_file`.
    """
    loaded = load_model_file(default_model_path() if path is None else path)
    return classifier_from_loaded(loaded).to(device)

