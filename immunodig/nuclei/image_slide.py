"""One annotated image as a slide, so that the evaluations run the nuclei stage of build-features.

``eval-lymphocytes`` and ``eval-nuclei`` wrap each image in an :class:`ImageSlide` (reads like
:meth:`immunodig.slides.Slide.read` on a single-level slide: the window at level 0, white outside
the image, resized with PIL's BOX filter when shrinking and BILINEAR when enlarging), give it a
tile table of every whole tile QC-passed (:func:`full_tile_table`; no tissue mask or tile QC: the
evaluations score segmentation and classification, not tissue detection) and take the nuclei
from :func:`immunodig.nuclei.slide_nuclei.iter_slide_nuclei`: the blocks, overlap, edge strip,
de-duplication and classifier context of ``segment_slide``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from immunodig.config import BuildConfig


class ImageSlide:
    """An in-memory single-level slide over ``rgb`` (uint8 (H, W, 3)) at ``mpp`` µm/px."""

    def __init__(self, rgb: np.ndarray, mpp: float) -> None:
        self.rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
        self.mpp = self.mpp_x = self.mpp_y = float(mpp)

    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 ``(width, height)``."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def size_um(self) -> tuple[float, float]:
        """Physical ``(width, height)`` in µm."""
        return self.rgb.shape[1] * self.mpp_x, self.rgb.shape[0] * self.mpp_y

    def read(self, x_px: float, y_px: float, size_px: tuple[int, int], mpp: float) -> np.ndarray:
        """``(height, width, 3)`` uint8 RGB of the window at ``(x_px, y_px)`` (level 0) at ``mpp``."""
        from PIL import Image

        out_w, out_h = int(size_px[0]), int(size_px[1])
        scale = mpp / self.mpp
        read_w, read_h = max(1, math.ceil(out_w * scale)), max(1, math.ceil(out_h * scale))
        x0, y0 = int(round(x_px)), int(round(y_px))
        # RGBA, transparent outside the image, as openslide's read_region returns it.
        region = np.zeros((read_h, read_w, 4), np.uint8)
        sx0, sy0 = max(0, x0), max(0, y0)
        sx1, sy1 = min(self.rgb.shape[1], x0 + read_w), min(self.rgb.shape[0], y0 + read_h)
        if sx1 > sx0 and sy1 > sy0:
            region[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0, :3] = self.rgb[sy0:sy1, sx0:sx1]
            region[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0, 3] = 255
        img = Image.fromarray(region, "RGBA")
        if (read_w, read_h) != (out_w, out_h):
            resample = Image.Resampling.BOX if read_w >= out_w else Image.Resampling.BILINEAR
            img = img.resize((out_w, out_h), resample=resample)
        return _on_white(np.asarray(img))


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite RGBA over white (as the slide reader does)."""
    from immunodig.slides.reader import _rgba_to_rgb_on_white

    return _rgba_to_rgb_on_white(rgba)


def full_tile_table(slide: Any, tile_um: float) -> Any:
    """Every whole tile of ``slide``'s grid, QC-passed, without a tissue class."""
    import polars as pl

    w_um, h_um = slide.size_um
    n_cols, n_rows = max(1, int(w_um // tile_um)), max(1, int(h_um // tile_um))
    cols, rows = np.meshgrid(np.arange(n_cols), np.arange(n_rows))
    return pl.DataFrame({
        "x_um": cols.ravel() * tile_um, "y_um": rows.ravel() * tile_um,
        "qc_pass": np.ones(cols.size, bool), "pred_class": pl.Series([None] * cols.size, dtype=pl.Utf8),
    })


def image_nuclei(rgb: np.ndarray, mpp: float, cfg: BuildConfig, segmenter: Any = None, classifier: Any = None,
                 with_labels: bool = False) -> dict[str, Any]:
    """Nuclei of one image through the nuclei stage of build-features.

    Returns
    -------
    dict
        ``xy_px`` (N, 2) centroids in the image's pixels, ``cell_class`` (N,), and with
        ``with_labels`` ``labels``: the kept instances painted at ``cfg.nuclei_mpp`` and brought
        back to the image's grid (nearest neighbour), int32, 0 = background.
    """
    from immunodig.nuclei.slide_nuclei import iter_slide_nuclei

    slide = ImageSlide(rgb, mpp)
    tiles = full_tile_table(slide, cfg.tile_size_um)
    xy, cls = [], []
    canvas = None
    if with_labels:
        w_um, h_um = slide.size_um
        canvas = np.zeros((math.ceil(h_um / cfg.nuclei_mpp), math.ceil(w_um / cfg.nuclei_mpp)), np.int32)
    next_id = 1
    for part in iter_slide_nuclei(slide, tiles, cfg, segmenter, classifier):
        xy.append(np.column_stack([part.rows["x_um"], part.rows["y_um"]]) / mpp)
        cls.append(part.rows["cell_class"])
        if canvas is not None and len(part.kept_ids):
            next_id = _paint(canvas, part, cfg.nuclei_mpp, next_id)
    out: dict[str, Any] = {
        "xy_px": np.concatenate(xy) if xy else np.zeros((0, 2)),
        "cell_class": np.concatenate(cls) if cls else np.zeros(0, dtype=str),
    }
    if canvas is not None:
        out["labels"] = _to_grid(canvas, rgb.shape[:2], cfg.nuclei_mpp / mpp)
    return out


def _paint(canvas: np.ndarray, part: Any, mpp: float, next_id: int) -> int:
    """Paint the kept instances of one block into ``canvas`` (pixels at ``mpp`` from the slide origin)."""
    lut = np.zeros(int(part.labels.max()) + 1, np.int32)
    lut[part.kept_ids] = np.arange(next_id, next_id + len(part.kept_ids), dtype=np.int32)
    block = lut[part.labels]
    ox, oy = (int(round(v / mpp)) for v in part.block.origin_um)
    h, w = block.shape
    cy0, cx0 = max(0, oy), max(0, ox)
    cy1, cx1 = min(canvas.shape[0], oy + h), min(canvas.shape[1], ox + w)
    if cy1 > cy0 and cx1 > cx0:
        sub = block[cy0 - oy : cy1 - oy, cx0 - ox : cx1 - ox]
        view = canvas[cy0:cy1, cx0:cx1]
        view[sub > 0] = sub[sub > 0]
    return next_id + len(part.kept_ids)


def _to_grid(canvas: np.ndarray, shape: tuple[int, int], ratio: float) -> np.ndarray:
    """Nearest-neighbour resample of a label map at ``ratio`` x the image's µm/px onto the image grid."""
    ry = np.minimum(((np.arange(shape[0]) + 0.5) / ratio).astype(np.int64), canvas.shape[0] - 1)
    rx = np.minimum(((np.arange(shape[1]) + 0.5) / ratio).astype(np.int64), canvas.shape[1] - 1)
    return canvas[ry[:, None], rx[None, :]]
