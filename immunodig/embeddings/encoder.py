"""Tile encoders: ``load_encoder`` and :class:`Encoder` (uint8 tiles -> float32 embeddings).

Example
-------
>>> enc = load_encoder()                              # the shipped default     # doctest: +SKIP
>>> enc.embed(tiles).shape                                                       # doctest: +SKIP
(N, 64)
>>> load_encoder("uni/pytorch_model.bin", architecture="vit_large_patch16_224")   # doctest: +SKIP
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.embeddings.metadata import EncoderMetadata, encoder_content_sha256, read_side_file
from immunodig.errors import ModelFileError, ModelMetadataError

#: File name of the shipped default encoder inside ``immunodig/assets/embeddings/``.
DEFAULT_ENCODER_NAME = "kather9_smallcnn_encoder.pt"
#: ImageNet statistics: the normalisation of torchvision backbones.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def default_encoder_path() -> Path:
    """Path of the shipped default encoder file."""
    return Path(str(resources.files("immunodig") / "assets" / "embeddings" / DEFAULT_ENCODER_NAME))


class Encoder:
    """A tile encoder loaded from a file.

    Attributes
    ----------
    metadata : EncoderMetadata
    name : str
        Short name recorded with every embedding file (metadata ``name``, else ``extra.name`` of an
        immunodig checkpoint, else architecture and file name).
    dim : int
        Length of one embedding.
    input_mpp : float
        Microns per pixel the tiles must be read at.
    tile_size_px : int
        Tile edge in pixels.
    file_sha256 : str
        Content hash of the file and its side file (enters the run key).
    layout : str
        How the network was rebuilt (``timm``, ``torchvision``, ``immunodig``, ``torchscript``).
    device : str
    batch_size : int
        Tiles per forward pass.
    """

    def __init__(self, network, metadata: EncoderMetadata, path: Path, layout: str, device: str | None = None,
                 batch_size: int = 64) -> None:
        import torch

        self.network, self.metadata, self.path, self.layout = network, metadata, path, layout
        self.name = metadata.name or metadata.extra.get("name") or f"{metadata.architecture}:{path.name}"
        self.input_mpp = float(metadata.input_mpp)
        self.tile_size_px = int(metadata.tile_size_px)
        self.file_sha256 = encoder_content_sha256(path)
        self.batch_size = int(batch_size)
        self._mean = torch.tensor(metadata.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(metadata.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self.device = "cpu"
        self.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        t = self.tile_size_px
        try:
            self.dim = int(self.embed(np.zeros((1, t, t, 3), np.uint8)).shape[1])
        except (RuntimeError, ValueError, AssertionError) as exc:
            raise ModelFileError(f"{path}: the encoder fails on a {t} px tile ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}); check tile_size_px "
                                 "and model_kwargs (img_size, dynamic_img_size) in the side file") from exc

    def to(self, device: str) -> "Encoder":
        """Move the network to ``device`` (``cpu``, ``cuda[:i]``); returns ``self``."""
        self.device = str(device)
        self.network = self.network.to(self.device)
        self._mean, self._std = self._mean.to(self.device), self._std.to(self.device)
        return self

    def check_tiles(self, tiles: np.ndarray) -> None:
        """Raise :class:`TileSizeError` unless ``tiles`` is uint8 ``(N, T, T, 3)``, T = tile size."""
        from immunodig.slides.tiling import check_tile_batch

        check_tile_batch(tiles, self.tile_size_px, self.input_mpp, self.path.name)

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        """Embeddings ``float32 (N, dim)`` of uint8 RGB tiles ``(N, T, T, 3)``, in batches."""
        import torch

        tiles = np.asarray(tiles)
        self.check_tiles(tiles)
        out = [self.embed_batch(torch.from_numpy(np.ascontiguousarray(tiles[i:i + self.batch_size])))
               for i in range(0, len(tiles), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, getattr(self, "dim", 0)), np.float32)

    def embed_batch(self, batch) -> np.ndarray:
        """Embeddings of a uint8 NHWC torch batch (pinned host memory is copied asynchronously)."""
        import torch

        cuda = self.device.startswith("cuda")
        if cuda and not batch.is_pinned():
            batch = batch.pin_memory()
        x = batch.to(self.device, non_blocking=cuda).permute(0, 3, 1, 2).float()
        x = (x - self._mean) / self._std
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            out = self._forward(x)
        if out.ndim != 2 and not (out.ndim == 4 and out.shape[2:] == (1, 1)):
            raise ModelFileError(
                f"{self.path}: the encoder returns shape {tuple(out.shape)}, not one vector per tile (tokens or a "
                "feature map); set pooling: cls+mean, or model_kwargs global_pool: token / avg in the side file")
        return out.float().reshape(len(x), -1).cpu().numpy()

    def _forward(self, x):
        if self.metadata.pooling == "cls+mean":
            tokens = self.network.forward_features(x)
            start = int(getattr(self.network, "num_prefix_tokens", 1))
            import torch

            return torch.cat([tokens[:, 0], tokens[:, start:].mean(dim=1)], dim=1)
        return self.network(x)

    def __repr__(self) -> str:
        return (f"Encoder({self.name}, dim {getattr(self, 'dim', '?')}, {self.tile_size_px} px @ "
                f"{self.input_mpp} µm/px, {self.layout})")


def _default_normalisation(meta: EncoderMetadata, network, layout: str, source: str) -> None:
    """Fill in mean/std the metadata leaves out: timm's own config, ImageNet for torchvision."""
    if meta.mean is not None and meta.std is not None:
        return
    if layout == "timm":
        import timm.data

        cfg = timm.data.resolve_data_config({}, model=network)
        meta.mean, meta.std = list(map(float, cfg["mean"])), list(map(float, cfg["std"]))
    elif layout == "torchvision":
        meta.mean, meta.std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    else:
        raise ModelMetadataError(f"{source}: no mean/std for this encoder; give them in the side file "
                                 "(per-channel, for RGB scaled to [0, 1])")


@functools.lru_cache(maxsize=1)
def cached_encoder(path: str | None, architecture: str | None, file_sha256: str) -> Encoder:
    """:func:`load_encoder` once per process and encoder content (workers embed slide after slide
    with one encoder).

    Raises
    ------
    ModelFileError
        The file's content hash is no longer ``file_sha256`` (it changed since the run started).
    """
    encoder = load_encoder(path, architecture)
    if encoder.file_sha256 != file_sha256:
        raise ModelFileError(f"{encoder.path}: the encoder file changed since the run started (its hash "
                             "differs from the run key's); rerun build-features")
    return encoder


def load_encoder(path: str | Path | None = None, architecture: str | None = None, *,
                 device: str | None = None, batch_size: int = 64, **metadata: Any) -> Encoder:
    """Load a tile encoder from a local file; ``path=None`` loads the shipped default.

    Parameters
    ----------
    path : str or Path, optional
        Weights (immunodig checkpoint, state dict ``.pth``/``.bin``/``.safetensors``, TorchScript),
        with an optional JSON/YAML side file (:mod:`immunodig.embeddings.metadata`).
    architecture : str, optional
        timm or torchvision model name; takes precedence over the side file.
    device : str, optional
        ``cpu`` or ``cuda[:i]``; default CUDA when available.
    batch_size : int
        Tiles per forward pass.
    **metadata
        Further :class:`EncoderMetadata` fields taking precedence over the side file
        (``input_mpp``, ``tile_size_px``, ``mean``, ``std``, ``model_kwargs``, ...).

    Raises
    ------
    ModelFileError
        Missing or unreadable file; :class:`~immunodig.errors.ModelMetadataError` when the
        architecture (or, for TorchScript, mean/std) is not given anywhere;
        :class:`~immunodig.errors.UnsupportedLayoutError` for an unknown architecture;
        :class:`~immunodig.errors.WeightsMismatchError` when the weights do not fit it.
    """
    from immunodig.embeddings.weights import read_encoder_file

    path = default_encoder_path() if path is None else Path(path)
    src = str(path)
    content = read_encoder_file(path)
    overrides = {k: v for k, v in {"architecture": architecture, **metadata}.items() if v is not None}
    raw = {**content.metadata, **read_side_file(path), **overrides}
    if content.scripted is not None:
        raw |= {"architecture": "torchscript", "layout": "torchscript"}
    meta = EncoderMetadata.from_dict(raw, src)
    if content.scripted is not None:
        network, layout = content.scripted, "torchscript"
    else:
        from immunodig.embeddings.networks import load_headless

        network, layout = load_headless(meta, content.state_dict or {}, src)
    meta.layout = layout
    _default_normalisation(meta, network, layout, src)
    return Encoder(network, meta, path, layout, device=device, batch_size=batch_size)
