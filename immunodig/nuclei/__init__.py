"""Nucleus segmentation, measurement and cell classification (H&E), and IHC positive cells.

Backends share one interface (:func:`get_segmenter` -> ``segment(rgb, mpp) -> int32 labels``);
:func:`segment_slide` runs segmentation, measurement and classification over a slide's tiles and
streams ``nuclei.parquet``. See docs/nuclei.md.
"""

from immunodig.nuclei.cell_classifier import CellClassifier, load_cell_classifier
from immunodig.nuclei.cellnet_classifier import CellNetClassifier
from immunodig.nuclei.classical import ClassicalSegmenter
from immunodig.nuclei.morphology import measure_nuclei
from immunodig.nuclei.patch_ensemble import PatchEnsembleClassifier
from immunodig.nuclei.rule_classifier import RuleCellClassifier
from immunodig.nuclei.segmenter import DEFAULT_BACKEND, Segmenter, get_segmenter
from immunodig.nuclei.slide_nuclei import model_files, segment_slide

__all__ = [
    "DEFAULT_BACKEND",
    "PatchEnsembleClassifier",
    "CellClassifier",
    "CellNetClassifier",
    "ClassicalSegmenter",
    "RuleCellClassifier",
    "Segmenter",
    "get_segmenter",
    "load_cell_classifier",
    "measure_nuclei",
    "model_files",
    "segment_slide",
]
