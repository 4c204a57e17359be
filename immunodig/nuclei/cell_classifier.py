"""The cell-classifier contract, the shipped default and the loader.

Classes are :data:`immunodig.vocab.CELL_CLASSES` (lymphocyte, epithelial, fibroblast, other);
CRCHistoPhenotypes' "inflammatory" maps to ``lymphocyte`` and "others" to ``other``.
Implementations:

* :class:`~immunodig.nuclei.rule_classifier.RuleCellClassifier` — no weights; thresholds on
  nucleus measures.
* :class:`~immunodig.nuclei.patch_ensemble.PatchEnsembleClassifier` — the shipped default
  (``assets/nuclei/nucleus_cells_crc.pt``, torch tensors + JSON metadata, read with
  ``torch.load(weights_only=True)``): an ensemble of small CNNs on nucleus-centred patches,
  trained on the segmented nuclei of CRCHistoPhenotypes (research-use licence, recorded in the
  file) and of generated slides.
* :class:`~immunodig.nuclei.cellnet_classifier.CellNetClassifier` — a small FCN trained from
  centre points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

#: Licence of the data the shipped default was trained on (stored in the model metadata).
CRC_LICENCE = "CRCHistoPhenotypes: research purpose only (Sirinukunwattana et al., IEEE TMI 2016)"
#: File name of the shipped default model under ``immunodig/assets/nuclei``.
DEFAULT_MODEL_NAME = "nucleus_cells_crc.pt"


@runtime_checkable
class CellClassifier(Protocol):
    """Anything that names each segmented nucleus' cell class.

    Attributes
    ----------
    classes : tuple of str
        The cell classes it outputs (a subset of ``CELL_CLASSES``).
    file_sha256 : str or None
        sha256 of the model file it was loaded from (``None``: no file, e.g. the rule).
    """

    classes: tuple[str, ...]
    file_sha256: str | None

    def classify_nuclei(self, rgb: np.ndarray, labels: np.ndarray, mpp: float,
                        ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Classify the instances 1..N of ``labels`` (int32, sequential, same shape as the uint8
        ``rgb``) at ``mpp`` µm/px, or only the instances ``ids`` (ascending, 1-based; the others
        are still context): (cell_class str, cell_prob float), one per classified instance."""
        ...


def default_model_path() -> Path:
    """Path of the shipped default cell classifier."""
    return Path(__file__).resolve().parents[1] / "assets" / "nuclei" / DEFAULT_MODEL_NAME


def load_cell_classifier(path: str | Path | None = None) -> CellClassifier:
    """Load a trained cell classifier; ``None`` = the shipped default.

    Files whose metadata names the patch-ensemble format (and ``.pkl`` files, which are
    patch ensembles with boosting) load as
    :class:`~immunodig.nuclei.patch_ensemble.PatchEnsembleClassifier`, other files as
    :class:`~immunodig.nuclei.cellnet_classifier.CellNetClassifier` checkpoints.
    """
    from immunodig.nuclei.cellnet_classifier import CellNetClassifier
    from immunodig.nuclei.patch_ensemble import PatchEnsembleClassifier

    path = Path(default_model_path() if path is None else path)
    if path.suffix == ".pkl" or PatchEnsembleClassifier.is_own_file(path):
        return PatchEnsembleClassifier.load(path)
    return CellNetClassifier.load(path)


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


