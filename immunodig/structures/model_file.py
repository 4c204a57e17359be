"""Structure-segmenter model files: immunodig checkpoints, the lab's TorchScript or state dicts.

Format (``format = "immunodig.structure-segmenter"``, ``version = 1``)
----------------------------------------------------------------------
The tissue-classifier layout (:mod:`immunodig.tissue.checkpoint`: a ``torch.save`` dict of
``format``, ``version``, ``metadata`` (:class:`~immunodig.tissue.checkpoint.ModelMetadata`
fields) and ``state_dict``, readable with ``weights_only=True``) under its own format name, so
neither loader mistakes one kind for the other. Metadata as used here:

* ``architecture``: a segmentation-models-pytorch architecture (``unet``, ``unetplusplus``,
  ``fpn``, ``deeplabv3plus``, ...; :func:`immunodig.structures.networks.build_network`) or
  ``torchscript``;
* ``class_names``: one per output channel, in order; the channel named ``background`` (any case)
  is background. A single channel is a sigmoid logit of the one structure class;
* ``input_mpp``, ``tile_size_px`` (inference tile edge), ``mean``/``std`` (RGB in [0, 1]),
  ``output`` (``logits`` or ``probabilities``), ``provenance``, ``metrics``, ``licence``;
* ``extra``: ``encoder`` (smp encoder name), ``decoder_channels``, ``instances``
  (``components`` or ``watershed``: how a class mask becomes objects), ``min_object_um2``.

The lab's own networks come as a TorchScript file (metadata embedded as ``immunodig.json`` or in
a side file) or a state dict of an smp network with a side file ``<model file>.json``
(:func:`immunodig.tissue.checkpoint.sidecar_path`) giving at least ``architecture``,
``class_names`` and ``extra.encoder``. The input is ``(N, 3, H, W)`` float32 normalised RGB,
the output ``(N, C, H, W)``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunodig.errors import ModelFileError, ModelMetadataError, WeightsMismatchError
from immunodig.tissue.checkpoint import (
    TORCHSCRIPT_METADATA_NAME,
    ModelMetadata,
    is_torchscript,
    save_checkpoint,
    sidecar_metadata,
)

SEGMENTER_FORMAT = "immunodig.structure-segmenter"
SEGMENTER_VERSION = 1
#: How a class mask becomes objects.
INSTANCE_METHODS: tuple[str, ...] = ("components", "watershed")


@dataclass
class LoadedSegmenter:
    """A segmentation network ready to run (eval mode, CPU) and its metadata."""

    metadata: ModelMetadata
    network: Any
    path: Path
    container: str

    @property
    def background_channel(self) -> int | None:
        """Output channel of the background, ``None`` for a single sigmoid channel."""
        names = [c.lower() for c in self.metadata.class_names]
        return names.index("background") if "background" in names else None

    @property
    def structure_classes(self) -> list[str]:
        """Class names of the structures (every output channel but the background)."""
        bg = self.background_channel
        return [c for i, c in enumerate(self.metadata.class_names) if i != bg]


def _validated(raw: dict[str, Any], src: str) -> ModelMetadata:
    meta = ModelMetadata.from_dict(raw, src)
    names = [c.lower() for c in meta.class_names]
    if len(names) != len(set(names)):
        raise ModelMetadataError(f"{src}: class_names {meta.class_names} repeat a name")
    if len(names) > 1 and "background" not in names:
        raise ModelMetadataError(f"{src}: class_names {meta.class_names} lack a 'background' channel; name the "
                                 "background output 'background' (a single-channel model needs none)")
    method = meta.extra.get("instances", "components")
    if method not in INSTANCE_METHODS:
        raise ModelMetadataError(f"{src}: extra.instances={method!r}; use one of {', '.join(INSTANCE_METHODS)}")
    return meta


def save_segmenter(path: str | Path, metadata: ModelMetadata, state_dict: dict[str, Any]) -> Path:
    """Write an immunodig structure-segmenter checkpoint atomically."""
    _validated(metadata.to_dict(), str(path))
    return save_checkpoint(path, metadata, state_dict, fmt=SEGMENTER_FORMAT)


def _network_from_state(meta: ModelMetadata, state: dict[str, Any], src: str) -> Any:
    from immunodig.structures.networks import build_network
    from immunodig.tissue.layouts import key_fit, strip_wrapper_prefixes

    if "encoder" not in meta.extra:
        raise ModelMetadataError(f"{src}: metadata extra.encoder missing (e.g. \"resnet18\"); the side file "
                                 "must say which smp encoder the state dict belongs to")
    net = build_network(meta.architecture, meta.extra["encoder"], len(meta.class_names),
                        meta.extra.get("decoder_channels"))
    state, _ = strip_wrapper_prefixes(state)
    fit = key_fit(net, state)
    if fit.missing or fit.unexpected or fit.mismatched:
        raise WeightsMismatchError(f"{src}: weights do not fit {meta.architecture}/{meta.extra['encoder']} with "
                                   f"{len(meta.class_names)} outputs: {fit.describe()}",
                                   fit.missing, fit.unexpected, fit.mismatched)
    net.load_state_dict(state, strict=False)
    return net.eval()


def _load_torchscript(path: Path) -> LoadedSegmenter:
    import torch

    src = str(path)
    extra = {TORCHSCRIPT_METADATA_NAME: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(src, map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError subclasses of many kinds
        raise ModelFileError(f"{src}: TorchScript file could not be loaded ({exc})") from exc
    embedded = json.loads(extra[TORCHSCRIPT_METADATA_NAME]) if extra[TORCHSCRIPT_METADATA_NAME] else {}
    raw = {**embedded, **(sidecar_metadata(path) or {})}
    if "class_names" not in raw:
        raise ModelMetadataError(f"{src}: TorchScript segmenter without metadata; add {path.name}.json with "
                                 "class_names, input_mpp, tile_size_px, mean, std (docs/structures.md)")
    meta = _validated({**raw, "architecture": "torchscript", "layout": "torchscript"}, src)
    return LoadedSegmenter(meta, module.eval(), path, "torchscript")


def load_segmenter(path: str | Path) -> LoadedSegmenter:
    """Read a structure-segmenter file of any accepted kind (module docstring).

    Raises
    ------
    ModelFileError
        Missing or unreadable file, metadata missing or invalid (:class:`ModelMetadataError`),
        weights that do not fit the stated network (:class:`WeightsMismatchError`).
    """
    import torch

    from immunodig.tissue.layouts import unwrap_state_dict

    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise ModelFileError(f"{src}: segmenter model file not found")
    if is_torchscript(path):
        return _load_torchscript(path)
    try:
        payload = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on unreadable files
        raise ModelFileError(f"{src}: not a readable model file ({type(exc).__name__}); expected an immunodig "
                             "segmenter checkpoint, a TorchScript file or a state dict with a side file") from exc
    if isinstance(payload, dict) and payload.get("format") == SEGMENTER_FORMAT:
        if int(payload.get("version", 0)) > SEGMENTER_VERSION:
            raise ModelFileError(f"{src}: segmenter version {payload['version']} is newer than this immunodig "
                                 f"understands ({SEGMENTER_VERSION}); upgrade immunodig")
        meta = _validated({**payload["metadata"], **(sidecar_metadata(path) or {})}, src)
        return LoadedSegmenter(meta, _network_from_state(meta, dict(payload["state_dict"]), src), path,
                               "immunodig checkpoint")
    if isinstance(payload, dict) and payload.get("format"):
        raise ModelFileError(f"{src}: a {payload['format']!r} file, not a structure segmenter")
    unwrapped = unwrap_state_dict(payload)
    if unwrapped is None:
        raise ModelFileError(f"{src}: unrecognised content (no segmenter checkpoint, state dict or TorchScript)")
    side = sidecar_metadata(path) or {}
    if not side:
        raise ModelMetadataError(f"{src}: a state dict without metadata; add {path.name}.json with architecture, "
                                 "class_names, input_mpp, tile_size_px, mean, std and extra.encoder")
    meta = _validated(side, src)
    return LoadedSegmenter(meta, _network_from_state(meta, unwrapped.state_dict, src), path, unwrapped.container)
