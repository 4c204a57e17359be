"""Regular tile grid over the tissue mask, in level-0 pixels and µm."""

from __future__ import annotations

import numpy as np
import polars as pl

from immunodig.errors import TileSizeError
from immunodig.slides.tissue_mask import TissueMask


def tile_grid(
    mask: TissueMask,
    slide_mpp: float,
    slide_dimensions: tuple[int, int],
    target_mpp: float = 0.5,
    tile_size_px: int = 224,
    min_tissue_fraction: float = 0.5,
) -> pl.DataFrame:
    """Lay a regular grid of tiles over the slide and keep those touching tissue.

    Tile ``(col, row)`` covers ``[col*T, (col+1)*T) x [row*T, (row+1)*T)`` µm with
    ``T = target_mpp * tile_size_px``; tiles that would cross the slide's right/bottom edge are
    dropped (the nuclei stage still covers that strip: :mod:`immunodig.nuclei.slide_nuclei`). The
    tissue fraction of a tile is the mean of the mask over the mask pixels the tile touches (box
    sums on a summed-area table).

    Parameters
    ----------
    mask : TissueMask
        Tissue mask of the slide.
    slide_mpp : float
        Level-0 microns per pixel.
    slide_dimensions : (int, int)
        Level-0 ``(width, height)``.
    target_mpp, tile_size_px : float, int
        Reading resolution and tile edge in pixels.
    min_tissue_fraction : float
        Tiles below it are flagged ``qc_background`` (kept in the table, not classified).

    Returns
    -------
    polars.DataFrame
        Columns ``col, row, x_px, y_px, w_px, h_px, x_um, y_um, tissue_fraction,
        qc_background``, one row per tile with tissue fraction > 0.
    """
    tile_um = target_mpp * tile_size_px
    w_um = slide_dimensions[0] * slide_mpp
    h_um = slide_dimensions[1] * slide_mpp
    n_cols, n_rows = int(w_um // tile_um), int(h_um // tile_um)
    if n_cols == 0 or n_rows == 0:
        return _empty_grid()
    # Summed-area table of the mask, padded with a zero row/column.
    m = mask.mask.astype(np.float64)
    sat = np.zeros((m.shape[0] + 1, m.shape[1] + 1))
    sat[1:, 1:] = m.cumsum(0).cumsum(1)
    cols, rows = np.meshgrid(np.arange(n_cols), np.arange(n_rows))
    cols, rows = cols.ravel(), rows.ravel()
    x0 = np.clip(np.floor(cols * tile_um / mask.mpp).astype(int), 0, m.shape[1])
    x1 = np.clip(np.ceil((cols + 1) * tile_um / mask.mpp).astype(int), 0, m.shape[1])
    y0 = np.clip(np.floor(rows * tile_um / mask.mpp).astype(int), 0, m.shape[0])
    y1 = np.clip(np.ceil((rows + 1) * tile_um / mask.mpp).astype(int), 0, m.shape[0])
    area = np.maximum((x1 - x0) * (y1 - y0), 1)
    inside = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
    frac = inside / area
    keep = frac > 0
    cols, rows, frac = cols[keep], rows[keep], frac[keep]
    edge_px = tile_um / slide_mpp
    return pl.DataFrame(
        {
            "col": cols.astype(np.int32),
            "row": rows.astype(np.int32),
            "x_px": np.round(cols * edge_px).astype(np.int64),
            "y_px": np.round(rows * edge_px).astype(np.int64),
            "w_px": np.full(cols.size, int(round(edge_px)), dtype=np.int64),
            "h_px": np.full(cols.size, int(round(edge_px)), dtype=np.int64),
            "x_um": cols * tile_um,
            "y_um": rows * tile_um,
            "tissue_fraction": frac.astype(np.float32),
            "qc_background": frac < min_tissue_fraction,
        }
    )


def _empty_grid() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "col": pl.Int32,
            "row": pl.Int32,
            "x_px": pl.Int64,
            "y_px": pl.Int64,
            "w_px": pl.Int64,
            "h_px": pl.Int64,
            "x_um": pl.Float64,
            "y_um": pl.Float64,
            "tissue_fraction": pl.Float32,
            "qc_background": pl.Boolean,
        }
    )


def check_tile_batch(tiles: np.ndarray, tile_size_px: int, mpp: float, model_name: str) -> None:
    """Raise :class:`~immunodig.errors.TileSizeError` unless ``tiles`` is uint8 ``(N, T, T, 3)``
    with ``T = tile_size_px`` (what a tile model ``model_name`` reading at ``mpp`` expects)."""
    t = tile_size_px
    if tiles.ndim != 4 or tiles.shape[1:] != (t, t, 3) or tiles.dtype != np.uint8:
        raise TileSizeError(
            f"{model_name}: expects uint8 tiles of shape (N, {t}, {t}, 3) at {mpp} µm/px, "
            f"got {tiles.dtype} {tuple(tiles.shape)}; read tiles with tile_size_px={t} and mpp={mpp}")
