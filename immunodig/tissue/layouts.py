"""Checkpoint layouts of tile classifiers: unwrapping, detection from the keys, exact rebuild.

A state dict is interpreted in three steps:

1. **Container** (:func:`unwrap_state_dict`): an immunodig checkpoint, a PyTorch Lightning
   checkpoint (``state_dict`` plus ``hyper_parameters``), a training-loop dict
   (``{"state_dict"|"model_state_dict"|"model"|"net": {...}}``) or a bare ``{name: tensor}``.
2. **Prefixes** (:func:`strip_wrapper_prefixes`): ``module.`` (DataParallel / DDP) and
   ``_orig_mod.`` (``torch.compile``) on every key, and the attribute prefix of a Lightning
   module (``model.`` / ``net.``; keys outside it, e.g. a weighted loss's ``criterion.weight``,
   are dropped and reported).
3. **Layout** (:func:`candidate_layouts`, :func:`reconstruct`): ``tiatoolbox`` (keys
   ``feat_extract.*`` + ``classifier.*``), ``torchvision`` (a torchvision classifier, head
   replaced or not), ``timm`` (``timm.create_model``), ``immunodig`` (``smallcnn``). The side
   file's ``layout`` names it when the keys are ambiguous; otherwise every candidate is tried
   and the one whose keys and shapes fit exactly is used.

Whole-file formats (TorchScript, ONNX) are handled by :mod:`immunodig.tissue.checkpoint`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from immunodig.errors import UnsupportedLayoutError, WeightsMismatchError

#: Layouts of state-dict files (``metadata.layout``), plus the whole-file formats.
STATE_DICT_LAYOUTS = ("torchvision", "timm", "tiatoolbox", "immunodig")
FILE_LAYOUTS = ("torchscript", "onnx")
LAYOUTS = STATE_DICT_LAYOUTS + FILE_LAYOUTS

#: Keys of training-loop dicts that hold the model's state dict.
_STATE_KEYS = ("state_dict", "model_state_dict", "model", "net")
#: Prefixes found on every key of wrapped models.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: Attribute names under which a LightningModule (or a wrapper) holds the network.
_ATTRIBUTE_PREFIXES = ("model.", "net.")
#: Head attributes of torchvision classifiers that labs replace.
_HEAD_NAMES = ("fc", "classifier", "head", "heads")
#: How many keys an error message lists per kind.
_LIST_MAX = 8


@dataclass
class Unwrapped:
    """A state dict taken out of its container."""

    state_dict: dict[str, Any]
    container: str
    hyper_parameters: dict[str, Any] = field(default_factory=dict)
    dropped_keys: list[str] = field(default_factory=list)


def _is_tensor_dict(obj: Any) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap_state_dict(payload: Any) -> Unwrapped | None:
    """The state dict inside a loaded file, or ``None`` when there is none.

    Lightning checkpoints are recognised by ``pytorch-lightning_version`` or
    ``hyper_parameters`` next to ``state_dict``; their hyper-parameters are returned.
    """
    if _is_tensor_dict(payload):
        return Unwrapped(dict(payload), "state dict")
    if not isinstance(payload, dict):
        return None
    if _is_tensor_dict(payload.get("state_dict")) and (
            "pytorch-lightning_version" in payload or "hyper_parameters" in payload):
        hp = payload.get("hyper_parameters")
        return Unwrapped(dict(payload["state_dict"]), "lightning",
                         dict(hp) if isinstance(hp, dict) else {})
    for key in _STATE_KEYS:
        if _is_tensor_dict(payload.get(key)):
            return Unwrapped(dict(payload[key]), f"dict with '{key}'")
    return None


def strip_wrapper_prefixes(state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Remove wrapper prefixes (see module docstring); returns the state and the dropped keys."""
    dropped: list[str] = []
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
        for prefix in _ATTRIBUTE_PREFIXES:
            inside = [k for k in state if k.startswith(prefix)]
            if inside and 2 * len(inside) > len(state):
                dropped += [k for k in state if not k.startswith(prefix)]
                state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
                changed = True
    return state, dropped


def weight_outputs(state: dict[str, Any]) -> tuple[str, int] | None:
    """Key and output count of the last 2-D ``*.weight`` (the head of a classifier), if any."""
    last = None
    for k, v in state.items():
        if k.endswith("weight") and getattr(v, "ndim", 0) == 2:
            last = (k, int(v.shape[0]))
    return last


def is_tiatoolbox(state: dict[str, Any]) -> bool:
    """True for TIAToolbox ``CNNModel`` keys: ``feat_extract.*`` and ``classifier.{weight,bias}``."""
    return ("classifier.weight" in state and any(k.startswith("feat_extract.") for k in state)
            and all(k.startswith("feat_extract.") or k in ("classifier.weight", "classifier.bias")
                    for k in state))


def _torchvision_names() -> set[str]:
    import torchvision

    return set(torchvision.models.list_models(module=torchvision.models))


def _is_timm_name(architecture: str) -> bool:
    try:
        import timm
    except ImportError:
        return False
    return bool(timm.is_model(architecture))


def candidate_layouts(architecture: str, state: dict[str, Any], layout: str | None,
                      source: str) -> list[str]:
    """Layouts to try, in order, for ``architecture`` and the file's keys.

    Raises
    ------
    UnsupportedLayoutError
        Unknown ``layout`` or an architecture no layout knows.
    """
    if layout is not None:
        if layout not in STATE_DICT_LAYOUTS:
            raise UnsupportedLayoutError(
                f"{source}: layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        return [layout]
    if is_tiatoolbox(state):
        return ["tiatoolbox"]
    if architecture == "smallcnn":
        return ["immunodig"]
    out = []
    if architecture in _torchvision_names():
        out.append("torchvision")
    if _is_timm_name(architecture):
        out.append("timm")
    if not out:
        raise UnsupportedLayoutError(
            f"{source}: unknown architecture {architecture!r}; use 'smallcnn', a torchvision "
            "classification model name (e.g. resnet18, resnet50, efficientnet_b0), a timm model "
            "name, a TorchScript or an ONNX file")
    return out


@dataclass
class KeyFit:
    """How a state dict fits a network's own state dict."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]

    @property
    def ok(self) -> bool:
        """True when every key is present with the right shape."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def n_problems(self) -> int:
        """Number of keys that do not fit."""
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    def describe(self) -> str:
        """``N missing keys (...); N unexpected keys (...); N shape mismatches (...)``."""
        parts = []
        for label, keys in (("missing key", self.missing), ("unexpected key", self.unexpected),
                            ("shape mismatch", self.mismatched)):
            if keys:
                more = f", ... {len(keys) - _LIST_MAX} more" if len(keys) > _LIST_MAX else ""
                plural = ("es" if label.endswith("h") else "s") if len(keys) > 1 else ""
                parts.append(f"{len(keys)} {label}{plural} ({', '.join(keys[:_LIST_MAX])}{more})")
        return "; ".join(parts) or "all keys fit"


def key_fit(network, state: dict[str, Any]) -> KeyFit:
    """Compare ``state`` with ``network.state_dict()``; missing BatchNorm
    ``num_batches_tracked`` counters are not problems (they do not affect inference)."""
    own = network.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
                  for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    return KeyFit(missing, unexpected, mismatched)


def _replace_torchvision_head(network, state: dict[str, Any]) -> None:
    """Give ``network`` the head the file has when a lab replaced it by one ``nn.Linear``,
    directly (``fc.weight``) or inside an ``nn.Sequential`` (``fc.1.weight``; the layers without
    weights before it are taken as Dropout, the identity at inference)."""
    from torch import nn

    for name in _HEAD_NAMES:
        if not isinstance(getattr(network, name, None), nn.Module):
            continue
        keys = {k[len(name) + 1:] for k in state if k.startswith(name + ".")}
        weights = [m for m in map(re.compile(r"(?:(\d+)\.)?weight").fullmatch, keys) if m]
        if len(weights) != 1:
            continue
        stem = weights[0].group(0)[:-len("weight")]
        if keys - {stem + "weight", stem + "bias"} or state[name + "." + stem + "weight"].ndim != 2:
            continue
        out_f, in_f = state[name + "." + stem + "weight"].shape
        linear = nn.Linear(int(in_f), int(out_f), bias=stem + "bias" in keys)
        index = weights[0].group(1)
        setattr(network, name, linear if index is None else
                nn.Sequential(*[nn.Identity() for _ in range(int(index))], linear))


def _build(layout: str, architecture: str, n_classes: int, state: dict[str, Any],
           extra: dict[str, Any], source: str):
    """An untrained network of ``layout`` shaped like the file's weights."""
    if layout == "tiatoolbox":
        from immunodig.tissue.tiatoolbox_net import TIAToolboxCNN

        return TIAToolboxCNN(architecture, n_classes, source)
    if layout == "timm":
        import timm

        return timm.create_model(architecture, pretrained=False, num_classes=n_classes)
    if layout == "immunodig":
        from immunodig.tissue.networks import small_cnn

        return small_cnn(n_classes, width=int(extra.get("width", 32)), downsample=int(extra.get("downsample", 2)))
    import torchvision

    if architecture not in _torchvision_names():
        raise UnsupportedLayoutError(f"{source}: {architecture!r} is not a torchvision model name")
    kwargs: dict[str, Any] = {}
    if architecture in ("inception_v3", "googlenet"):
        aux = "AuxLogits." if architecture == "inception_v3" else "aux1."
        kwargs = {"aux_logits": any(k.startswith(aux) for k in state), "init_weights": False}
    network = torchvision.models.get_model(architecture, weights=None, num_classes=n_classes, **kwargs)
    if not key_fit(network, state).ok:
        _replace_torchvision_head(network, state)
    return network


@dataclass
class Reconstructed:
    """A network rebuilt from a state dict, with the weights loaded and in eval mode."""

    network: Any
    layout: str
    output: str


def reconstruct(architecture: str, n_classes: int, state: dict[str, Any], layout: str | None,
                extra: dict[str, Any], source: str) -> Reconstructed:
    """Rebuild the network of ``state`` exactly and load its weights.

    Parameters
    ----------
    architecture : str
        Model name (torchvision, timm, TIAToolbox backbone, or ``smallcnn``).
    n_classes : int
        Number of outputs the metadata names.
    state : dict
        Weights with wrapper prefixes removed.
    layout : str or None
        Forced layout; ``None`` detects it.
    extra : dict
        Architecture settings (``smallcnn``).
    source : str
        File named in error messages.

    Raises
    ------
    WeightsMismatchError
        No candidate layout fits; lists the missing and unexpected keys and shape mismatches of
        the closest candidate.
    UnsupportedLayoutError
        Unknown layout or architecture.
    """
    best: tuple[KeyFit, str] | None = None
    for cand in candidate_layouts(architecture, state, layout, source):
        network = _build(cand, architecture, n_classes, state, extra, source)
        fit = key_fit(network, state)
        if fit.ok:
            network.load_state_dict(state, strict=False)
            output = "probabilities" if cand == "tiatoolbox" else "logits"
            return Reconstructed(network.eval(), cand, output)
        if best is None or fit.n_problems < best[0].n_problems:
            best = (fit, cand)
    assert best is not None
    fit, cand = best
    found = weight_outputs(state)
    head = (f"; the head {found[0]} has {found[1]} outputs but the metadata names {n_classes} "
            "classes (give one class name per output, in output order)"
            if found is not None and found[1] != n_classes else "")
    raise WeightsMismatchError(
        f"{source}: weights do not fit architecture {architecture!r} with {n_classes} classes "
        f"(layout {cand}): {fit.describe()}{head}; check 'architecture' and 'layout' in the side "
        "file (python cli.py describe-model shows what the file holds)",
        fit.missing, fit.unexpected, fit.mismatched)
