"""Reading an encoder file's weights and metadata (before any network is built).

Accepted: immunodig checkpoints (``immunodig.tissue.checkpoint.save_checkpoint``; a CNN tile
classifier is an encoder too, its penultimate layer), state dicts as model cards distribute them
(``pytorch_model.bin``, ``*.pth``, ``*.safetensors``; bare, in a Lightning checkpoint or a
training-loop dict, with ``module.`` / ``_orig_mod.`` / ``model.`` prefixes, see
:mod:`immunodig.tissue.layouts`) and TorchScript files.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunodig.errors import ModelFileError
from immunodig.tissue.checkpoint import (
    CHECKPOINT_FORMAT,
    EMBEDDED_METADATA_NAME,
    is_torchscript,
    metadata_from_hyper_parameters,
)

#: Suffixes read with ``safetensors`` instead of ``torch.load``.
SAFETENSORS_SUFFIXES: tuple[str, ...] = (".safetensors",)


@dataclass
class EncoderFile:
    """Raw content of an encoder file.

    Attributes
    ----------
    metadata : dict
        Metadata the file itself carries (unvalidated; the side file and arguments come on top).
    state_dict : dict or None
        Weights with wrapper prefixes removed (``None`` for TorchScript).
    scripted : torch.jit.ScriptModule or None
    container : str
        What held the weights (``immunodig checkpoint``, ``safetensors``, ``lightning``, ...).
    """

    metadata: dict[str, Any]
    state_dict: dict[str, Any] | None
    scripted: Any | None
    container: str


def read_encoder_file(path: Path) -> EncoderFile:
    """Read ``path`` (see module docstring).

    Raises
    ------
    ModelFileError
        Missing, unreadable, or holding no tensors.
    """
    src = str(path)
    if not path.is_file():
        raise ModelFileError(f"{src}: encoder file not found; pass an existing file or omit --encoder "
                             "to use the shipped default")
    if is_torchscript(path):
        return _read_torchscript(path)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            state = load_file(src, device="cpu")
        except Exception as exc:  # safetensors raises SafetensorError or OSError
            raise ModelFileError(f"{src}: not a readable safetensors file ({exc})") from exc
        return _from_state(state, {}, "safetensors", src)
    import torch

    try:
        payload = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(
            f"{src}: not a readable encoder file ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "expected a state dict readable with torch.load(weights_only=True), a .safetensors, a "
            "TorchScript file or an immunodig checkpoint") from exc
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        return _from_state(dict(payload["state_dict"]), dict(payload.get("metadata") or {}),
                           "immunodig checkpoint", src)
    from immunodig.tissue.layouts import unwrap_state_dict

    unwrapped = unwrap_state_dict(payload)
    if unwrapped is None:
        raise ModelFileError(f"{src}: no state dict of tensors found (nor an immunodig checkpoint or "
                             "TorchScript); re-save the weights as model.state_dict()")
    return _from_state(unwrapped.state_dict, metadata_from_hyper_parameters(unwrapped.hyper_parameters),
                       unwrapped.container, src)


def _from_state(state: dict[str, Any], metadata: dict[str, Any], container: str, src: str) -> EncoderFile:
    from immunodig.tissue.layouts import strip_wrapper_prefixes

    if not state:
        raise ModelFileError(f"{src}: the file holds no weights")
    state, _ = strip_wrapper_prefixes(dict(state))
    return EncoderFile(metadata, state, None, container)


def _read_torchscript(path: Path) -> EncoderFile:
    import torch

    extra = {EMBEDDED_METADATA_NAME: ""}
    try:
        with warnings.catch_warnings():  # torch >= 2.9 flags TorchScript as deprecated
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError subclasses of many kinds
        raise ModelFileError(f"{path}: TorchScript file could not be loaded ({exc})") from exc
    embedded = json.loads(extra[EMBEDDED_METADATA_NAME]) if extra[EMBEDDED_METADATA_NAME] else {}
    return EncoderFile({**embedded, "architecture": "torchscript", "layout": "torchscript"}, None,
                       module.eval(), "torchscript")
