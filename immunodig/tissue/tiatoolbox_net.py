"""TIAToolbox's ``CNNModel`` rebuilt without TIAToolbox, so its state dicts load exactly.

TIAToolbox (``tiatoolbox.models.architecture.vanilla.CNNModel``) builds a patch classifier as
``feat_extract`` (a torchvision backbone without its head) -> ``AdaptiveAvgPool2d(1)`` -> flatten
-> ``classifier`` (one ``nn.Linear``) -> softmax over classes. The trunk is taken as TIAToolbox
takes it:

- ``resnet*``, ``resnext*``, ``wide_resnet*``: the model's children without the last two
  (average pool, ``fc``);
- ``inception_v3``, ``googlenet``: built with ``aux_logits=False``, children without the last
  three (average pool, dropout, ``fc``);
- every other backbone (``densenet*``, ``alexnet``, ``mobilenet_v2``, ``mobilenet_v3_*``, and
  by the same rule ``efficientnet_*``, ``vgg*``, ...): the model's ``features`` module. For
  DenseNet this omits the final ReLU of torchvision's own forward, as TIAToolbox does.

This module imports torch at import time; import it lazily.
"""

from __future__ import annotations

import torch
from torch import nn

from immunodig.errors import UnsupportedLayoutError

#: The backbones TIAToolbox's CNNModel lists (``torch_cnn_backbone_dict``).
TIATOOLBOX_BACKBONES: tuple[str, ...] = (
    "alexnet", "resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d",
    "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161",
    "densenet169", "densenet201", "inception_v3", "googlenet", "mobilenet_v2",
    "mobilenet_v3_large", "mobilenet_v3_small",
)


def tiatoolbox_trunk(backbone: str, source: str = "model file") -> nn.Module:
    """The ``feat_extract`` module TIAToolbox builds for ``backbone`` (random weights).

    Raises
    ------
    UnsupportedLayoutError
        ``backbone`` is not a torchvision model, or one without a ``features`` trunk.
    """
    import torchvision

    if backbone not in torchvision.models.list_models(module=torchvision.models):
        raise UnsupportedLayoutError(
            f"{source}: TIAToolbox CNNModel backbone {backbone!r} is not a torchvision model; "
            f"TIAToolbox lists {', '.join(TIATOOLBOX_BACKBONES)}")
    if backbone in ("inception_v3", "googlenet"):
        model = torchvision.models.get_model(backbone, weights=None, aux_logits=False,
                                             num_classes=1000, init_weights=False)
        return nn.Sequential(*list(model.children())[:-3])
    model = torchvision.models.get_model(backbone, weights=None)
    if "resnet" in backbone or "resnext" in backbone:
        return nn.Sequential(*list(model.children())[:-2])
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Module):
        raise UnsupportedLayoutError(
            f"{source}: torchvision {backbone!r} has no 'features' trunk, so TIAToolbox's CNNModel "
            f"cannot be built on it; TIAToolbox lists {', '.join(TIATOOLBOX_BACKBONES)}")
    return features


class TIAToolboxCNN(nn.Module):
    """``CNNModel(backbone, num_classes)`` of TIAToolbox: trunk, global average pool, linear,
    softmax (its forward returns probabilities)."""

    def __init__(self, backbone: str, num_classes: int, source: str = "model file") -> None:
        super().__init__()
        self.feat_extract = tiatoolbox_trunk(backbone, source)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.feat_extract.eval()
        with torch.no_grad():  # TIAToolbox sizes the head with a forward pass at 96 px
            n_features = self.feat_extract(torch.zeros(2, 3, 96, 96)).shape[1]
        self.classifier = nn.Linear(n_features, num_classes)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, num_classes)``."""
        feat = self.pool(self.feat_extract(imgs))
        return torch.softmax(self.classifier(torch.flatten(feat, 1)), -1)
