"""Network architectures a checkpoint can name: immunodig's ``smallcnn`` and torchvision models.

torchvision models are always built with ``weights=None``: nothing is downloaded, the weights come
from the checkpoint.
"""

from __future__ import annotations

from typing import Any

from immunodig.errors import ModelFileError


def build_network(architecture: str, num_classes: int, extra: dict[str, Any] | None = None,
                  source: str = "model file"):
    """Instantiate an untrained network.

    Parameters
    ----------
    architecture : str
        ``smallcnn`` or any torchvision classification model name (``resnet18``,
        ``resnet50``, ``efficientnet_b0``, ``convnext_tiny``, ...).
    num_classes : int
        Number of outputs.
    extra : dict, optional
        ``width`` and ``downsample`` for ``smallcnn``.
    source : str
        File named in error messages.
    """
    import torchvision

    extra = extra or {}
    if architecture == "smallcnn":
        return small_cnn(num_classes, width=int(extra.get("width", 32)),
                         downsample=int(extra.get("downsample", 2)))
    available = set(torchvision.models.list_models(module=torchvision.models))
    if architecture not in available:
        raise ModelFileError(
            f"{source}: unknown architecture {architecture!r}; use 'smallcnn', a torchvision "
            "classification model name (e.g. resnet18, resnet50, efficientnet_b0) or a "
            "TorchScript file")
    return torchvision.models.get_model(architecture, weights=None, num_classes=num_classes)


def small_cnn(num_classes: int, width: int = 32, downsample: int = 2):
    """Compact CNN for 224 px tiles: average-pool by ``downsample``, 4 conv stages, global pool.

    About 0.4 M parameters at ``width=32``; meant for training from scratch on small data.
    """
    from torch import nn

    def stage(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    w = width
    layers: list[nn.Module] = [nn.AvgPool2d(downsample)] if downsample > 1 else []
    layers += stage(3, w) + stage(w, 2 * w) + stage(2 * w, 4 * w) + stage(4 * w, 4 * w)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * w, num_classes)]
    return nn.Sequential(*layers)
