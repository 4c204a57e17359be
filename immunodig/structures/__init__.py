"""Structures (TLS, glands, tumour buds, necrosis, ...) learnt from QuPath annotations.

QuPath GeoJSON exports are read (:mod:`.geojson`) and rasterised to class masks
(:mod:`.rasterise`) beside images or whole slides (:mod:`.dataset`); see docs/structures.md.
"""

from immunodig.structures.dataset import AnnotatedRegion, list_annotated_files, load_annotated_folder
from immunodig.structures.geojson import Annotation, is_ignore_class, is_roi_class, read_geojson
from immunodig.structures.rasterise import IGNORE_LABEL, Grid, LabelImages, polygon_mask, rasterise

__all__ = [
    "IGNORE_LABEL",
    "AnnotatedRegion",
    "Annotation",
    "Grid",
    "LabelImages",
    "is_ignore_class",
    "is_roi_class",
    "list_annotated_files",
    "load_annotated_folder",
    "polygon_mask",
    "rasterise",
    "read_geojson",
]
