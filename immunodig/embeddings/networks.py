"""Headless networks: an encoder's architecture rebuilt without its classification head, with the
file's weights loaded exactly.

- ``timm``: ``timm.create_model(name, pretrained=False, num_classes=0, **model_kwargs)``; string
  values of ``mlp_layer`` / ``act_layer`` / ``norm_layer`` name classes of ``timm.layers`` or
  ``torch.nn`` (``SwiGLUPacked``, ``SiLU``), as model cards pass them.
- ``torchvision``: ``torchvision.models.get_model(name, weights=None)`` with the last
  ``nn.Linear`` of its head (``fc``, ``classifier``, ``head``, ``heads``) replaced by the identity.
- ``immunodig``: ``smallcnn`` (:func:`immunodig.tissue.networks.small_cnn`) without its last
  ``nn.Linear``: the global-average-pooled features.

The file's head weights (whatever their number of classes) are dropped; every other key must fit
the network exactly, otherwise :class:`~immunodig.errors.WeightsMismatchError` lists what differs.
Nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

from immunodig.embeddings.metadata import EncoderMetadata
from immunodig.errors import ModelMetadataError, UnsupportedLayoutError, WeightsMismatchError

#: Head attributes of torchvision (and timm) classifiers.
HEAD_NAMES: tuple[str, ...] = ("fc", "classifier", "head", "heads")
#: ``timm.create_model`` arguments whose string values name a class.
CLASS_KWARGS: tuple[str, ...] = ("mlp_layer", "act_layer", "norm_layer", "embed_layer", "block_fn")


def candidate_layouts(meta: EncoderMetadata, source: str) -> list[str]:
    """Layouts to try for ``meta.architecture``, in order.

    Raises
    ------
    UnsupportedLayoutError
        An architecture neither timm nor torchvision knows (and not ``smallcnn``).
    """
    if meta.layout is not None:
        return [meta.layout]
    if meta.architecture == "smallcnn":
        return ["immunodig"]
    import timm
    import torchvision

    out = []
    if meta.architecture in torchvision.models.list_models(module=torchvision.models):
        out.append("torchvision")
    if timm.is_model(meta.architecture):
        out.append("timm")
    if not out:
        raise UnsupportedLayoutError(
            f"{source}: unknown encoder architecture {meta.architecture!r}; use a timm model name "
            "(timm.list_models(), e.g. vit_small_patch16_224, vit_large_patch16_224), a torchvision "
            "model name (resnet50, ...), 'smallcnn', or a TorchScript file (docs/embeddings.md)")
    return out


def _resolve_class(name: str, key: str, source: str):
    import timm.layers
    from torch import nn

    for module in (timm.layers, nn):
        if isinstance(getattr(module, name, None), type):
            return getattr(module, name)
    raise ModelMetadataError(f"{source}: model_kwargs {key}={name!r} is neither a timm.layers nor a "
                             "torch.nn class")


def timm_kwargs(meta: EncoderMetadata, source: str) -> dict[str, Any]:
    """``model_kwargs`` with class names resolved (see module docstring)."""
    out = dict(meta.model_kwargs)
    for key in CLASS_KWARGS:
        if isinstance(out.get(key), str):
            out[key] = _resolve_class(out[key], key, source)
    out.pop("num_classes", None)
    out.pop("pretrained", None)
    return out


def build_headless(layout: str, meta: EncoderMetadata, source: str):
    """An untrained network of ``layout`` without its head, and the state-dict prefix of the head
    it lost (file keys under it that the network lacks are dropped)."""
    if layout == "timm":
        import timm

        try:
            net = timm.create_model(meta.architecture, pretrained=False, num_classes=0,
                                    **timm_kwargs(meta, source))
        except TypeError as exc:
            raise ModelMetadataError(f"{source}: timm.create_model({meta.architecture!r}) refused "
                                     f"model_kwargs {meta.model_kwargs} ({exc})") from exc
        return net, (net.pretrained_cfg.get("classifier") or "head") + "."
    if layout == "immunodig":
        from torch import nn

        from immunodig.tissue.networks import small_cnn

        net = small_cnn(1, width=int(meta.extra.get("width", 32)), downsample=int(meta.extra.get("downsample", 2)))
        head = str(len(net) - 1)
        net[-1] = nn.Identity()
        return net, head + "."
    if layout == "torchvision":
        import torchvision

        kwargs = {"aux_logits": False, "init_weights": False} if meta.architecture in ("inception_v3",
                                                                                      "googlenet") else {}
        net = torchvision.models.get_model(meta.architecture, weights=None, **kwargs)
        return net, _drop_last_linear(net, source)
    raise UnsupportedLayoutError(f"{source}: layout {layout!r} cannot be rebuilt from a state dict; "
                                 "use timm, torchvision or immunodig")


def _drop_last_linear(net, source: str) -> str:
    """Replace the last ``nn.Linear`` under the network's head attribute by the identity."""
    from torch import nn

    for name in HEAD_NAMES:
        head = getattr(net, name, None)
        if not isinstance(head, nn.Module):
            continue
        if isinstance(head, nn.Linear):
            setattr(net, name, nn.Identity())
            return name + "."
        linears = [n for n, m in head.named_modules() if isinstance(m, nn.Linear)]
        if linears:
            parent_name, _, attr = linears[-1].rpartition(".")
            parent = head.get_submodule(parent_name) if parent_name else head
            setattr(parent, attr, nn.Identity())
            return f"{name}.{linears[-1]}."
    raise UnsupportedLayoutError(f"{source}: no classification head ({', '.join(HEAD_NAMES)}) found "
                                 "to remove; export the encoder as TorchScript instead")


def load_headless(meta: EncoderMetadata, state: dict[str, Any], source: str):
    """The headless network of ``meta`` with ``state`` loaded, in eval mode; returns it and its layout.

    Raises
    ------
    WeightsMismatchError
        No candidate layout fits; names missing/unexpected keys and shape mismatches of the
        closest one.
    """
    from immunodig.tissue.layouts import key_fit

    best = None
    for layout in candidate_layouts(meta, source):
        net, head = build_headless(layout, meta, source)
        own = net.state_dict()
        kept = {k: v for k, v in state.items() if k in own or not k.startswith(head)}
        fit = key_fit(net, kept)
        if fit.ok:
            net.load_state_dict(kept, strict=False)
            return net.eval(), layout
        if best is None or fit.n_problems < best[0].n_problems:
            best = (fit, layout)
    assert best is not None
    fit, layout = best
    raise WeightsMismatchError(
        f"{source}: weights do not fit encoder architecture {meta.architecture!r} (layout {layout}, "
        f"model_kwargs {meta.model_kwargs}): {fit.describe()}; check the architecture name and the "
        "model card's timm kwargs in the side file (docs/embeddings.md)",
        fit.missing, fit.unexpected, fit.mismatched)
