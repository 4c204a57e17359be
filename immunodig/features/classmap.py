"""Tile class map: one pixel per tile, coloured by predicted Kather class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from immunodig.vocab import KATHER_CLASSES, KATHER_COLOURS

#: Colour of tiles that touch tissue but were excluded by quality control.
QC_EXCLUDED_COLOUR = "#7f7f7f"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def class_map_rgb(tiles: pl.DataFrame, n_cols: int, n_rows: int) -> np.ndarray:
    """Render ``(n_rows, n_cols, 3)`` uint8: Kather colour per classified tile, grey for QC
    exclusions, white elsewhere."""
    img = np.full((max(n_rows, 1), max(n_cols, 1), 3), 255, dtype=np.uint8)
    if tiles.height == 0:
        return img
    names = list(KATHER_CLASSES)
    palette = np.array([_rgb(KATHER_COLOURS[c]) for c in names] + [_rgb(QC_EXCLUDED_COLOUR)],
                       dtype=np.uint8)
    index = (
        tiles["pred_class"].replace_strict(names, list(range(len(names))), default=len(names),
                                           return_dtype=pl.Int32)
        .to_numpy()
    )
    img[tiles["row"].to_numpy(), tiles["col"].to_numpy()] = palette[index]
    return img


def save_class_map(tiles: pl.DataFrame, n_cols: int, n_rows: int, path: str | Path) -> None:
    """Write the class map PNG atomically."""
    from PIL import Image

    from immunodig.io import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(class_map_rgb(tiles, n_cols, n_rows)).save(tmp, format="PNG")
