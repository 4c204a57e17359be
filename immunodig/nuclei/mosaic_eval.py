"""Whole-slide checks from annotated images: a mosaic slide, and its nuclei scored against the points.

Annotated point images (CRCHistoPhenotypes) are tiled edge to edge into one pyramidal JPEG TIFF
(:func:`write_mosaic_slide`) that ``build-features`` reads like any scanned slide; the
``nuclei.parquet`` it writes is then scored against the annotated centres moved into slide
coordinates (:func:`score_slide_nuclei`), with the same one-to-one matching and counting as
``eval-lymphocytes`` (:func:`immunodig.nuclei.lymphocyte_eval.evaluate_lymphocytes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.nuclei.datasets import CRC_CLASSES, PointImage
from immunodig.nuclei.evaluation import detection_scores, match_points, score_class_detection
from immunodig.nuclei.lymphocyte_eval import MATCH_RADIUS_UM, TARGET, class_indices


@dataclass(frozen=True)
class Mosaic:
    """Where each image lies in the mosaic: ``origins_px[i]`` = (x, y) of image ``i``'s top-left."""

    images: tuple[PointImage, ...]
    origins_px: tuple[tuple[int, int], ...]
    mpp: float

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """All annotated centres in slide µm (N, 2) and their labels (``CRC_CLASSES`` index or -1)."""
        xy = [(im.points_xy + np.asarray(o, float)) * self.mpp for im, o in zip(self.images, self.origins_px)]
        return np.concatenate(xy), np.concatenate([im.labels for im in self.images])


def write_mosaic_slide(
    images: list[PointImage],
    path: str | Path,
    columns: int,
    quality: int = 90,
    dust_specks: int = 0,
    seed: int = 0,
) -> Mosaic:
    """Tile ``images`` (same size and mpp) row by row into a pyramidal JPEG TIFF at their mpp.

    Parameters
    ----------
    images : list of PointImage
    path : path
        ``.tiff`` to write.
    columns : int
        Images per mosaic row.
    quality : int
        JPEG quality of every level.
    dust_specks : int
        Black-grey specks (1-2.5 µm radius) drawn at seeded random places: dust on the cover slip.
    seed : int
        Seed of the speck positions.
    """
    from immunodig.synthetic.slide_writer import write_pyramid_tiff

    h, w = images[0].rgb.shape[:2]
    mpp = images[0].mpp
    if any(im.rgb.shape[:2] != (h, w) or abs(im.mpp - mpp) > 1e-9 for im in images):
        raise ValueError("mosaic images must share size and mpp")
    rows = -(-len(images) // columns)
    canvas = np.full((rows * h, columns * w, 3), 255, np.uint8)
    origins = []
    for i, im in enumerate(images):
        y0, x0 = (i // columns) * h, (i % columns) * w
        canvas[y0 : y0 + h, x0 : x0 + w] = im.rgb
        origins.append((x0, y0))
    rng = np.random.default_rng(seed)
    for _ in range(dust_specks):
        r = rng.uniform(1.0, 2.5) / mpp
        cx, cy = rng.uniform(0, canvas.shape[1]), rng.uniform(0, canvas.shape[0])
        y0, y1, x0, x1 = int(max(0, cy - r)), int(cy + r) + 1, int(max(0, cx - r)), int(cx + r) + 1
        yy, xx = np.mgrid[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1][(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = int(rng.integers(5, 40))
    write_pyramid_tiff(
        path,
        canvas.shape[0],
        canvas.shape[1],
        lambda y, n: canvas[y : y + n],
        mpp,
        "immunodig annotated mosaic",
        quality=quality,
    )
    return Mosaic(tuple(images), tuple(origins), mpp)


def score_slide_nuclei(
    nuclei: Any, mosaic: Mosaic, tiles: Any = None, radius_um: float = MATCH_RADIUS_UM
) -> dict[str, Any]:
    """Score a slide's ``nuclei.parquet`` rows (``x_um``, ``y_um``, ``cell_class``) against the mosaic.

    Parameters
    ----------
    nuclei : mapping of columns
    mosaic : Mosaic
    tiles : polars.DataFrame, optional
        The slide's tile table (``x_um``, ``y_um``, ``w_px``, ``qc_pass``)
        as ``tiles_mpp``: when given, only annotated centres inside QC-passed tiles count
        (nuclei outside whole tiles, in the edge strip the nuclei stage also covers, are still
        counted as predictions); ``tiled_fraction`` says how many centres that left.

    Returns
    -------
    dict
        ``recall`` (annotated centres matched by any nucleus), ``count_ratio`` (nuclei in the
        annotated images / annotated centres), the inflammatory ``precision`` / ``recall`` /
        ``f1`` of ``eval-lymphocytes`` under ``inflammatory``, and the counts.
    """
    xy = np.column_stack([np.asarray(nuclei["x_um"], float), np.asarray(nuclei["y_um"], float)])
    idx = class_indices(list(nuclei["cell_class"]))
    gt_xy, gt_lab = mosaic.points()
    n_all = len(gt_xy)
    h, w = mosaic.images[0].rgb.shape[:2]
    inside = np.zeros(len(xy), bool)
    for x0, y0 in mosaic.origins_px:
        px = xy / mosaic.mpp
        inside |= (px[:, 0] >= x0) & (px[:, 0] < x0 + w) & (px[:, 1] >= y0) & (px[:, 1] < y0 + h)
    xy, idx = xy[inside], idx[inside]
    if tiles is not None:
        gt_in = _in_tiles(gt_xy, tiles, mosaic.mpp)
        gt_xy, gt_lab = gt_xy[gt_in], gt_lab[gt_in]
    _, gi = match_points(xy, gt_xy, radius_um)
    counts, _ = score_class_detection(xy, idx, gt_xy, gt_lab, TARGET, radius_um, len(CRC_CLASSES))
    return {
        "recall": len(gi) / max(len(gt_xy), 1),
        "count_ratio": len(xy) / max(len(gt_xy), 1),
        "n_nuclei": int(len(xy)),
        "n_annotated": int(len(gt_xy)),
        "tiled_fraction": len(gt_xy) / max(n_all, 1),
        "inflammatory": detection_scores(counts["tp"], counts["fp"], counts["fn"]),
    }


def _in_tiles(xy_um: np.ndarray, tiles: Any, mpp: float) -> np.ndarray:
    """Which points lie in a QC-passed tile (tile squares from ``x_um``, ``y_um``, ``w_px`` at ``mpp``)."""
    passed = tiles.filter(tiles["qc_pass"].fill_null(False))
    x0, y0 = passed["x_um"].to_numpy(), passed["y_um"].to_numpy()
    edge = passed["w_px"].to_numpy() * mpp
    inside = np.zeros(len(xy_um), bool)
    for a, b, e in zip(x0, y0, edge):
        inside |= (xy_um[:, 0] >= a) & (xy_um[:, 0] < a + e) & (xy_um[:, 1] >= b) & (xy_um[:, 1] < b + e)
    return inside
