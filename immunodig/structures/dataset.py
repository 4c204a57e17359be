"""Annotated training and test folders: images or whole slides beside QuPath GeoJSON exports.

Layout
------
``DIR/<name>.<ext>`` + ``DIR/<name>.geojson`` (same stem; sub-folders are searched too), where
``<ext>`` is an image tile (``.png``, ``.bmp``, ``.jpg``, flat ``.tif``/``.tiff``) or a whole slide
openslide reads (``.svs``, ``.ndpi``, ``.mrxs``, ``.scn``, tiled pyramidal ``.tif``). An image
without a GeoJSON file is not used; a GeoJSON file without an image is an error.

Resolution
----------
Everything is read at the model's ``mpp``. A whole slide's own resolution comes from its
metadata (``image_mpp`` only fills in when the metadata has none, and must agree with it
otherwise); an image tile is taken to be at ``image_mpp`` (default: ``mpp`` itself) and
resampled. A whole slide needs at least one region-of-interest annotation (``Region*``): each
one's bounding box is read as a region (unannotated slides are too large to call background).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from immunodig.errors import AnnotationError, DatasetError, MppMismatchError
from immunodig.structures.geojson import Annotation, read_geojson, structure_classes
from immunodig.structures.rasterise import Grid, LabelImages, check_inside, rasterise

#: Image tile suffixes (flat images, read whole).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
#: Whole-slide suffixes (``.tif``/``.tiff`` count when openslide recognises them).
SLIDE_SUFFIXES: tuple[str, ...] = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide",
                                   ".tif", ".tiff")
#: Relative disagreement tolerated between a slide's metadata mpp and ``image_mpp``.
MPP_TOLERANCE = 0.05


@dataclass(frozen=True)
class AnnotatedRegion:
    """An image (or a slide region) at the model's resolution with its labels.

    Attributes
    ----------
    group : str
        The image or slide it came from (cross-validation and early stopping split by it).
    source : Path
        The image or slide file.
    rgb : ndarray uint8 (H, W, 3)
    labels : ndarray uint8 (H, W)
        0 background, k the k-th class, 255 ignored (:mod:`immunodig.structures.rasterise`).
    instances : ndarray int32 (H, W)
    mpp : float
    origin_px : (float, float)
        Level-0 top-left corner of the region.
    source_mpp : float
        Level-0 µm/px of the image or slide (``origin_px`` and annotations are in its pixels).
    """

    group: str
    source: Path
    rgb: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    mpp: float
    origin_px: tuple[float, float] = (0.0, 0.0)
    source_mpp: float | None = None


def _is_slide(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix not in SLIDE_SUFFIXES:
        return False
    if suffix not in (".tif", ".tiff"):
        return True
    import openslide

    try:
        return openslide.OpenSlide.detect_format(str(path)) is not None
    except openslide.OpenSlideError:
        return False


def list_annotated_files(folder: str | Path) -> list[tuple[Path, Path]]:
    """``(image or slide, geojson)`` pairs of ``folder`` (recursive, sorted by path).

    Raises
    ------
    DatasetError
        Not a folder, no pair found, a GeoJSON file without its image, or two images of one stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder; pass a folder of images with same-stem .geojson files")
    pairs = []
    for gj in sorted(folder.rglob("*.geojson")):
        cands = [p for p in gj.parent.iterdir()
                 if p.stem == gj.stem and p.suffix.lower() in set(IMAGE_SUFFIXES + SLIDE_SUFFIXES)]
        if not cands:
            raise DatasetError(f"{gj}: no image or slide named {gj.stem}.* beside it "
                               f"(accepted: {', '.join(sorted(set(IMAGE_SUFFIXES + SLIDE_SUFFIXES)))})")
        if len(cands) > 1:
            raise DatasetError(f"{gj}: several images share its stem ({', '.join(sorted(p.name for p in cands))}); "
                               "keep one")
        pairs.append((cands[0], gj))
    if not pairs:
        raise DatasetError(f"{folder}: no .geojson annotation file found (export them from QuPath: "
                           "File > Export objects as GeoJSON, named like the image)")
    return pairs


def resize_rgb(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if rgb.shape[:2] == shape:
        return rgb
    resample = Image.Resampling.BOX if shape[0] < rgb.shape[0] else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(rgb).resize((shape[1], shape[0]), resample=resample))


def _image_region(image: Path, gj: Path, annotations: list[Annotation], classes: Sequence[str], mpp: float,
                  image_mpp: float) -> AnnotatedRegion:
    from immunodig.nuclei.datasets import read_rgb

    rgb = read_rgb(image)
    h, w = rgb.shape[:2]
    check_inside(annotations, w, h, str(gj))
    scale = image_mpp / mpp
    grid = Grid((0.0, 0.0), scale, (max(1, round(h * scale)), max(1, round(w * scale))))
    lab = rasterise(annotations, grid, classes)
    return AnnotatedRegion(image.stem, image, resize_rgb(rgb, grid.shape), lab.labels, lab.instances, mpp,
                           source_mpp=image_mpp)


def _slide_regions(path: Path, gj: Path, annotations: list[Annotation], classes: Sequence[str], mpp: float,
                   image_mpp: float | None) -> list[AnnotatedRegion]:
    import math

    from immunodig.slides.reader import Slide

    rois = [a for a in annotations if a.is_roi]
    if not rois:
        raise AnnotationError(f"{gj}: whole slide {path.name} has no region-of-interest annotation; draw a "
                              "'Region*' area around each completely annotated part (docs/structures.md)")
    with Slide(path, mpp=image_mpp) as slide:
        if image_mpp is not None and slide.mpp_source == "metadata" and \
                abs(slide.mpp - image_mpp) > MPP_TOLERANCE * slide.mpp:
            raise MppMismatchError(f"{path}: the slide's metadata says {slide.mpp:g} µm/px but --image-mpp "
                                   f"{image_mpp:g} was given; drop --image-mpp or correct it")
        check_inside(annotations, *slide.dimensions, str(gj))
        scale = slide.mpp / mpp
        out = []
        for roi in rois:
            x0, y0, x1, y1 = roi.geometry.bounds
            x0, y0 = math.floor(max(x0, 0)), math.floor(max(y0, 0))
            shape = (max(1, math.ceil((y1 - y0) * scale)), max(1, math.ceil((x1 - x0) * scale)))
            rgb = slide.read(x0, y0, (shape[1], shape[0]), mpp)
            lab: LabelImages = rasterise(annotations, Grid((x0, y0), scale, shape), classes)
            out.append(AnnotatedRegion(path.stem, path, rgb, lab.labels, lab.instances, mpp, (float(x0), float(y0)),
                                       slide.mpp))
    return out


def load_annotated_folder(folder: str | Path, mpp: float, classes: Sequence[str] | None = None,
                          image_mpp: float | None = None) -> tuple[list[AnnotatedRegion], list[str]]:
    """Read every annotated image or slide of ``folder`` at ``mpp`` (layout in the module docstring).

    Parameters
    ----------
    folder : str or Path
    mpp : float
        Resolution of the returned regions (the model's).
    classes : sequence of str, optional
        Structure classes, in label order; default: every class found, sorted.
    image_mpp : float, optional
        Resolution of image tiles (default ``mpp``); for slides, used only when the metadata has none.

    Returns
    -------
    regions : list of AnnotatedRegion
    classes : list of str
    """
    pairs = list_annotated_files(folder)
    per_file = [(img, gj, read_geojson(gj, classes)) for img, gj in pairs]
    if classes is None:
        classes = structure_classes([a for _, _, anns in per_file for a in anns])
        if not classes:
            raise DatasetError(f"{folder}: the annotations name no structure class (only regions of interest "
                               "or ignore areas)")
    regions: list[AnnotatedRegion] = []
    for img, gj, anns in per_file:
        if _is_slide(img):
            regions.extend(_slide_regions(img, gj, anns, classes, mpp, image_mpp))
        else:
            regions.append(_image_region(img, gj, anns, classes, mpp, image_mpp or mpp))
    return regions, list(classes)
