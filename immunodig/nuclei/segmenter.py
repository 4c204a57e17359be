"""The segmenter interface and the backend registry.

Every backend turns an RGB image and its resolution into an instance map::

    seg = get_segmenter("classical")
    labels = seg.segment(rgb, mpp=0.5)   # int32 (H, W), 0 = background, 1..N nuclei
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from immunodig.errors import ConfigError

#: Backend used when none is named (chosen by leave-one-image-out AJI on MoNuSeg; docs/nuclei.md).
DEFAULT_BACKEND = "classical"
BACKENDS: tuple[str, ...] = ("classical", "cellpose", "torchscript", "segmenter")


@runtime_checkable
class Segmenter(Protocol):
    """Anything with ``name`` and ``segment(rgb, mpp) -> int32 instance labels``."""

    name: str

    def segment(self, rgb: np.ndarray, mpp: float) -> np.ndarray:
        """Segment nuclei in a uint8 (H, W, 3) image at ``mpp`` µm/px."""
        ...


def get_segmenter(backend: str | None = None, model: str | None = None, **params: Any) -> Segmenter:
    """Return a segmenter.

    Parameters
    ----------
    backend : {"classical", "cellpose", "torchscript", "segmenter"} or None
        ``None`` = :data:`DEFAULT_BACKEND`. ``segmenter``: a semantic segmentation network in
        the structure-segmenter format (``train-segmenter``, or the lab's TorchScript / state
        dict + side file, e.g. a lymphocyte segmenter); its mask becomes instances by connected
        components or watershed (:class:`immunodig.structures.inference.StructureSegmenter`).
    model : str or None
        Model file (``torchscript``, ``segmenter``: required; ``cellpose``: local file or
        built-in name).
    **params
        Backend parameters (see each backend's class).
    """
    backend = backend or DEFAULT_BACKEND
    if backend == "classical":
        from immunodig.nuclei.classical import ClassicalSegmenter

        if model is not None:
            raise ConfigError("the classical nuclei backend takes no model file; drop --nuclei-model")
        return ClassicalSegmenter(**params)
    if backend == "cellpose":
        from immunodig.nuclei.cellpose_backend import CellposeSegmenter

        return CellposeSegmenter(model or "nuclei", **params)
    if backend == "torchscript":
        from immunodig.nuclei.torchscript_backend import TorchScriptSegmenter

        if model is None:
            raise ConfigError("the torchscript nuclei backend needs a model file (nuclei_model / --model)")
        return TorchScriptSegmenter(model, **params)
    if backend == "segmenter":
        from immunodig.structures.inference import StructureSegmenter

        if model is None:
            raise ConfigError("the segmenter nuclei backend needs a model file (train-segmenter, or the lab's "
                              "TorchScript / state dict + side file): --nuclei-model")
        return StructureSegmenter(model, **params)
    raise ConfigError(f"unknown nuclei backend {backend!r}; choose one of {', '.join(BACKENDS)}")
