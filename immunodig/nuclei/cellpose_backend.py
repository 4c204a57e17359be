"""Cellpose backend (cellpose 3.1 API, ``models.CellposeModel``).

The model is either a local file (``pretrained_model=path``) or a built-in name (``nuclei``,
``cyto3``, ...). Built-in weights are downloaded by cellpose into its own cache
(``~/.cellpose/models`` or ``$CELLPOSE_LOCAL_MODELS_PATH``) the first time, which needs internet;
offline, a clear :class:`~immunodig.errors.ModelFileError` says so. The nucleus diameter is set in
µm and converted with the image's mpp. Large images are cut into tiles that cellpose evaluates in
batches; the GPU is used when torch sees one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from immunodig.errors import ModelFileError


class CellposeSegmenter:
    """Nucleus segmentation with cellpose.

    Parameters
    ----------
    model : str
        Path to a cellpose model file, or a built-in model name.
    diameter_um : float
        Typical nucleus diameter in µm (converted to pixels with ``mpp``).
    batch_size : int
        Tiles per network batch.
    flow_threshold, cellprob_threshold : float
        Cellpose's own thresholds.
    gpu : bool or None
        ``None`` = use a GPU when torch sees one.
    invert : bool
        Invert grey levels so H&E nuclei (dark) look like the bright nuclei cellpose was trained on.
    """

    name = "cellpose"

    def __init__(
        self,
        model: str = "nuclei",
        diameter_um: float = 7.0,
        batch_size: int = 8,
        flow_threshold: float = 0.4,
        cellprob_threshold: float = 0.0,
        gpu: bool | None = None,
        invert: bool = True,
    ) -> None:
        self.model = str(model)
        self.diameter_um = diameter_um
        self.batch_size = batch_size
        self.flow_threshold = flow_threshold
        self.cellprob_threshold = cellprob_threshold
        self.gpu = gpu
        self.invert = invert
        self._net = None

    def _load(self):
        if self._net is not None:
            return self._net
        import torch
        from cellpose import models

        gpu = torch.cuda.is_available() if self.gpu is None else self.gpu
        path = Path(self.model)
        is_file = path.suffix != "" or os.sep in self.model or path.exists()
        if is_file and not path.exists():
            raise ModelFileError(
                f"{path}: cellpose model file not found; pass a local file or a built-in name such as 'nuclei'"
            )
        try:
            if is_file:
                self._net = models.CellposeModel(gpu=gpu, pretrained_model=str(path))
            else:
                self._net = models.CellposeModel(gpu=gpu, model_type=self.model)
        except (OSError, ConnectionError, ValueError, RuntimeError) as exc:
            raise ModelFileError(
                f"cellpose model {self.model!r} could not be loaded ({type(exc).__name__}: {exc}). "
                "Built-in models are downloaded by cellpose into its cache and need internet the first "
                "time; offline, copy the weights there or pass a local model file."
            ) from exc
        return self._net

    def segment(self, rgb: np.ndarray, mpp: float) -> np.ndarray:
        """Segment nuclei; returns int32 instance labels."""
        net = self._load()
        masks, _flows, _styles = net.eval(
            rgb,
            diameter=self.diameter_um / mpp,
            channels=[0, 0],
            batch_size=self.batch_size,
            flow_threshold=self.flow_threshold,
            cellprob_threshold=self.cellprob_threshold,
            tile_overlap=0.1,
            invert=self.invert,
        )
        return np.asarray(masks, dtype=np.int32)
