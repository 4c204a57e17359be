"""Whole-slide reading, tissue detection, tiling and tile quality control."""

from immunodig.slides.quality import tile_quality
from immunodig.slides.reader import Slide
from immunodig.slides.tiling import tile_grid
from immunodig.slides.tissue_mask import TissueMask, detect_tissue, tissue_mask

__all__ = ["Slide", "TissueMask", "detect_tissue", "tissue_mask", "tile_grid", "tile_quality"]
