"""Kather-9 tissue classification of tiles: model files, classifiers, inference, training.

See docs/tissue.md for the model-file format and how to plug in a lab's own model.
"""

from immunodig.errors import TileSizeError
from immunodig.tissue.checkpoint import ModelMetadata, kather_code, load_model_file, save_checkpoint
from immunodig.tissue.classifier import TileClassifier, default_model_path, load_tissue_classifier

__all__ = [
    "ModelMetadata",
    "TileClassifier",
    "TileSizeError",
    "default_model_path",
    "kather_code",
    "load_model_file",
    "load_tissue_classifier",
    "save_checkpoint",
]
