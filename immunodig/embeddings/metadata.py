"""What an encoder file says about itself: :class:`EncoderMetadata`, the JSON/YAML side file, the
content hash.

An encoder's metadata comes, by increasing precedence, from the file itself (an immunodig
checkpoint's ``metadata``, a TorchScript's embedded ``immunodig.json``, Lightning
``hyper_parameters``), from a side file next to the weights and from the ``architecture=``
argument. The side file follows the tissue-classifier convention
(:func:`immunodig.tissue.checkpoint.sidecar_path`: ``<file>.json`` or ``<stem>.json``) and may also be
YAML (``<file>.yaml``/``.yml`` or ``<stem>.yaml``/``.yml``)::

    # pytorch_model.bin.yaml (UNI)
    architecture: vit_large_patch16_224
    model_kwargs: {img_size: 224, patch_size: 16, init_values: 1.0e-5, dynamic_img_size: true}
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
    input_mpp: 0.5
    tile_size_px: 224
    name: UNI
    licence: CC-BY-NC-ND-4.0 (MahmoodLab; not redistributable)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from immunodig.errors import ModelMetadataError
from immunodig.tissue.checkpoint import HYPER_PARAMETER_ALIASES, sidecar_path

#: Layouts an encoder's weights can have (``layout`` in the metadata); ``None`` detects it.
ENCODER_LAYOUTS: tuple[str, ...] = ("timm", "torchvision", "immunodig", "torchscript")
#: How token outputs of a ViT become one vector: the model's own pooling (timm ``global_pool``,
#: usually the class token) or the class token concatenated with the mean patch token (Virchow).
POOLINGS: tuple[str, ...] = ("model", "cls+mean")
#: Side-file suffixes besides the tissue-classifier ``.json`` ones.
YAML_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")
#: Metadata field names accepted under other spellings (the tissue-classifier aliases plus these).
ALIASES: dict[str, str] = {**HYPER_PARAMETER_ALIASES, "timm_kwargs": "model_kwargs", "license": "licence"}


@dataclass
class EncoderMetadata:
    """Everything needed to turn an encoder file into tile embeddings.

    Parameters
    ----------
    architecture : str
        timm model name (``vit_small_patch16_224``), torchvision model name (``resnet50``),
        ``smallcnn`` (immunodig's CNN) or ``torchscript``.
    input_mpp : float
        Microns per pixel the tiles are read at.
    tile_size_px : int
        Tile edge in pixels.
    mean, std : list of float
        Per-channel normalisation of RGB scaled to [0, 1]; ``None`` takes the timm model's own
        (``timm.data.resolve_data_config``) or ImageNet's for torchvision; required for TorchScript.
    layout : str or None
        One of :data:`ENCODER_LAYOUTS`; ``None`` detects it from the architecture and the keys.
    model_kwargs : dict
        Keyword arguments of ``timm.create_model`` from the model card (``init_values``,
        ``dynamic_img_size``, ``mlp_layer: SwiGLUPacked``, ``act_layer: SiLU``, ...).
    pooling : str
        One of :data:`POOLINGS`.
    name : str or None
        Short name recorded with every embedding file (default: architecture and file name).
    licence : str
        Licence of the weights.
    provenance, metrics, extra : dict
        Training data, script and seed; validation figures; architecture settings (``width``,
        ``downsample`` of ``smallcnn``).
    """

    architecture: str
    input_mpp: float = 0.5
    tile_size_px: int = 224
    mean: list[float] | None = None
    std: list[float] | None = None
    layout: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    pooling: str = "model"
    name: str | None = None
    licence: str = "unknown"
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "EncoderMetadata":
        """Validate a metadata dict (aliases accepted, unknown keys ignored); ``source`` names the
        file in error messages.

        Raises
        ------
        ModelMetadataError
            No architecture, or a value out of range.
        """
        known = {f.name for f in fields(cls)}
        data = {ALIASES.get(k, k) if k not in known else k: v for k, v in data.items()}
        if not data.get("architecture"):
            raise ModelMetadataError(
                f"{source}: no architecture for this encoder; pass architecture= (--encoder-arch, a timm "
                f"or torchvision model name) or write {Path(source).name}.json (or .yaml) beside it with "
                "architecture, mean, std, input_mpp, tile_size_px (docs/embeddings.md)")
        meta = cls(**{k: v for k, v in data.items() if k in known})
        meta.input_mpp, meta.tile_size_px = float(meta.input_mpp), int(meta.tile_size_px)
        if not 0.05 <= meta.input_mpp <= 20:
            raise ModelMetadataError(f"{source}: input_mpp={meta.input_mpp} outside 0.05-20 µm/px")
        if not 16 <= meta.tile_size_px <= 4096:
            raise ModelMetadataError(f"{source}: tile_size_px={meta.tile_size_px} outside 16-4096")
        for key in ("mean", "std"):
            value = getattr(meta, key)
            if value is not None:
                if len(value) != 3 or (key == "std" and min(value) <= 0):
                    raise ModelMetadataError(f"{source}: {key} must be 3 values (std > 0), got {value}")
                setattr(meta, key, [float(v) for v in value])
        if meta.layout is not None and meta.layout not in ENCODER_LAYOUTS:
            raise ModelMetadataError(f"{source}: layout={meta.layout!r}; use one of {', '.join(ENCODER_LAYOUTS)} "
                                     "or leave it out to detect it")
        if meta.pooling not in POOLINGS:
            raise ModelMetadataError(f"{source}: pooling={meta.pooling!r}; use one of {', '.join(POOLINGS)}")
        if not isinstance(meta.model_kwargs, dict):
            raise ModelMetadataError(f"{source}: model_kwargs must be a mapping of timm.create_model arguments")
        return meta

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON representation."""
        return asdict(self)


def encoder_sidecar_path(path: str | Path) -> Path | None:
    """The side file of an encoder file: JSON as for tissue classifiers, else YAML, if one exists."""
    path = Path(path)
    found = sidecar_path(path)
    if found is not None:
        return found
    for suffix in YAML_SUFFIXES:
        for cand in (path.with_name(path.name + suffix), path.with_suffix(suffix)):
            if cand.exists() and cand != path:
                return cand
    return None


def read_side_file(path: str | Path) -> dict[str, Any]:
    """The side file's fields (``{}`` when there is none).

    Raises
    ------
    ModelMetadataError
        The side file is not valid JSON/YAML or not a mapping.
    """
    side = encoder_sidecar_path(path)
    if side is None:
        return {}
    text = side.read_text()
    try:
        if side.suffix.lower() in YAML_SUFFIXES:
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError or yaml.YAMLError
        raise ModelMetadataError(f"{side}: side file is not valid {side.suffix[1:].upper()} ({exc})") from exc
    if not isinstance(raw, dict):
        raise ModelMetadataError(f"{side}: side file must be a mapping of metadata fields")
    return raw


def encoder_content_sha256(path: str | Path) -> str:
    """Content hash of an encoder file and its side file (the file's own SHA-256 without one), as
    :func:`immunodig.tissue.checkpoint.model_content_sha256` does for JSON side files."""
    from immunodig.provenance import file_sha256

    digest = file_sha256(path)
    side = encoder_sidecar_path(path)
    if side is None:
        return digest
    return hashlib.sha256((digest + file_sha256(side)).encode()).hexdigest()
