"""Segmentation networks from segmentation-models-pytorch, built without downloading weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from immunodig.errors import ConfigError, ModelFileError

#: smp architectures accepted by name (``smp.create_model``; lower case).
ARCHITECTURES: tuple[str, ...] = ("unet", "unetplusplus", "fpn", "pspnet", "deeplabv3", "deeplabv3plus",
                                  "linknet", "manet", "pan", "upernet", "segformer")


def build_network(architecture: str, encoder: str, n_outputs: int,
                  decoder_channels: Sequence[int] | None = None, encoder_weights: str | Path | None = None) -> Any:
    """An smp network with random weights, or its encoder from a local file.

    Parameters
    ----------
    architecture : str
        One of :data:`ARCHITECTURES`.
    encoder : str
        smp encoder name (``resnet18``, ``resnet34``, ``efficientnet-b0``, ``mobilenet_v2``, ...).
    n_outputs : int
        Output channels.
    decoder_channels : sequence of int, optional
        U-Net-style decoders only (default: smp's).
    encoder_weights : path, optional
        A state dict of the encoder (e.g. torchvision ImageNet ResNet weights saved beforehand);
        never fetched from the internet.
    """
    import segmentation_models_pytorch as smp

    arch = architecture.lower()
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown segmentation architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}")
    kwargs: dict[str, Any] = {}
    if decoder_channels is not None and arch in ("unet", "unetplusplus", "manet"):
        kwargs["decoder_channels"] = [int(c) for c in decoder_channels]
    try:
        net = smp.create_model(arch, encoder_name=encoder, encoder_weights=None, classes=n_outputs, **kwargs)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"cannot build {arch} with encoder {encoder!r} ({exc})") from exc
    if encoder_weights is not None:
        _load_encoder(net, Path(encoder_weights))
    return net


def _load_encoder(net: Any, path: Path) -> None:
    import torch

    from immunodig.tissue.layouts import strip_wrapper_prefixes, unwrap_state_dict

    try:
        unwrapped = unwrap_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    except (OSError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: encoder weights not readable ({exc})") from exc
    if unwrapped is None:
        raise ModelFileError(f"{path}: no state dict of tensors in the encoder weights file")
    state, _ = strip_wrapper_prefixes(unwrapped.state_dict)
    state = {k.removeprefix("encoder."): v for k, v in state.items()}
    result = net.encoder.load_state_dict(state, strict=False)
    own = [k for k in net.encoder.state_dict() if not k.endswith("num_batches_tracked")]
    if len(result.missing_keys) > len(own) // 2:
        raise ModelFileError(f"{path}: encoder weights do not fit this encoder ({len(result.missing_keys)} of "
                             f"{len(own)} keys missing, e.g. {result.missing_keys[:3]})")
