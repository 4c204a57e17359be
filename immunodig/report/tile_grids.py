"""Tile-level pictures computed on the slide's tile grid (no drawing): class colours, cell (TIL,
IHC-positive) density per tile and QC exclusions, in level-0 pixel coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from immunodig.vocab import KATHER_CLASSES, KATHER_COLOURS

#: Colours of QC exclusion reasons (``tiles.parquet`` ``qc_reason``).
QC_COLOURS: dict[str, str] = {"blur": "#ff7f0e", "pen": "#17becf", "background": "#bcbd22",
                              "other": "#7f7f7f"}
#: Cell class counted as TIL in the density map.
TIL_CLASS = "lymphocyte"


@dataclass(frozen=True)
class TileGrid:
    """Tiles laid out on their regular grid, in level-0 pixels.

    ``row``/``col`` index each tile; ``extent`` is ``(left, right, bottom, top)`` for imshow.
    """

    row: np.ndarray
    col: np.ndarray
    shape: tuple[int, int]
    extent: tuple[float, float, float, float]
    tile_w_px: float
    tile_h_px: float
    x0_px: float
    y0_px: float

    def cell_of(self, x_px, y_px) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grid cell of level-0 points and whether it lies on the grid."""
        c = np.floor((np.asarray(x_px, float) - self.x0_px) / self.tile_w_px).astype(np.int64)
        r = np.floor((np.asarray(y_px, float) - self.y0_px) / self.tile_h_px).astype(np.int64)
        inside = (r >= 0) & (r < self.shape[0]) & (c >= 0) & (c < self.shape[1])
        return r, c, inside


def tile_grid_of(tiles: pl.DataFrame) -> TileGrid:
    """Place ``tiles.parquet`` rows on their grid (tiles share one size, as the tiler makes)."""
    x = tiles["x_px"].to_numpy().astype(float)
    y = tiles["y_px"].to_numpy().astype(float)
    w = float(np.median(tiles["w_px"].to_numpy()))
    h = float(np.median(tiles["h_px"].to_numpy()))
    x0, y0 = float(x.min()), float(y.min())
    col = np.rint((x - x0) / w).astype(np.int64)
    row = np.rint((y - y0) / h).astype(np.int64)
    shape = (int(row.max()) + 1, int(col.max()) + 1)
    extent = (x0, x0 + shape[1] * w, y0 + shape[0] * h, y0)
    return TileGrid(row, col, shape, extent, w, h, x0, y0)


def rgba(hex_colour: str, alpha: float) -> np.ndarray:
    """RGBA floats of a hex colour with the given opacity."""
    from matplotlib.colors import to_rgba

    return np.array(to_rgba(hex_colour, alpha), dtype=float)


def class_overlay_rgba(tiles: pl.DataFrame, grid: TileGrid, alpha: float = 0.5) -> np.ndarray:
    """``(rows, cols, 4)`` float image: Kather colour of each classified tile, transparent
    elsewhere."""
    img = np.zeros((*grid.shape, 4))
    pred = tiles["pred_class"].to_list()
    for cls in KATHER_CLASSES:
        m = np.array([p == cls for p in pred], dtype=bool)
        img[grid.row[m], grid.col[m]] = rgba(KATHER_COLOURS[cls], alpha)
    return img


def cell_density_grid(tiles: pl.DataFrame, x_px: np.ndarray, y_px: np.ndarray, grid: TileGrid,
                      mpp: float) -> np.ndarray:
    """Cells per mm² of tissue in each tile (NaN off tissue or where QC failed).

    The tissue area of a tile is its area times ``tissue_fraction``; a cell belongs to the
    tile whose rectangle contains its level-0 centroid ``(x_px, y_px)``.
    """
    area_mm2 = (grid.tile_w_px * mpp / 1000.0) * (grid.tile_h_px * mpp / 1000.0)
    tissue = np.zeros(grid.shape)
    frac = tiles["tissue_fraction"].fill_null(0.0).to_numpy().astype(float)
    ok = tiles["qc_pass"].fill_null(False).to_numpy().astype(bool) if "qc_pass" in tiles.columns \
        else np.ones(tiles.height, bool)
    tissue[grid.row[ok], grid.col[ok]] = frac[ok] * area_mm2
    counts = np.zeros(grid.shape)
    r, c, inside = grid.cell_of(x_px, y_px)
    np.add.at(counts, (r[inside], c[inside]), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tissue > 0, counts / tissue, np.nan)


def til_density_grid(tiles: pl.DataFrame, nuclei: pl.DataFrame, grid: TileGrid,
                     mpp: float) -> np.ndarray:
    """Lymphocytes (nuclei of class :data:`TIL_CLASS`) per mm² of tissue in each tile."""
    lym = nuclei.filter(pl.col("cell_class") == TIL_CLASS)
    return cell_density_grid(tiles, lym["x_px"].to_numpy(), lym["y_px"].to_numpy(), grid, mpp)


def qc_overlay_rgba(tiles: pl.DataFrame, grid: TileGrid, alpha: float = 0.7) -> tuple[np.ndarray, dict[str, int]]:
    """Tiles excluded by QC coloured by reason; returns the image and the count per reason."""
    img = np.zeros((*grid.shape, 4))
    failed = ~tiles["qc_pass"].fill_null(True).to_numpy().astype(bool)
    reasons = tiles["qc_reason"].to_list() if "qc_reason" in tiles.columns else [None] * tiles.height
    counts: dict[str, int] = {}
    for i in np.flatnonzero(failed):
        reason = reasons[i] if reasons[i] in QC_COLOURS else "other"
        counts[reason] = counts.get(reason, 0) + 1
        img[grid.row[i], grid.col[i]] = rgba(QC_COLOURS[reason], alpha)
    return img, counts
