"""Tile and nucleus tables of known layout, drawn from character grids."""

from __future__ import annotations

import numpy as np
import polars as pl

from immunodig.vocab import KATHER_CLASSES

#: One character per tile: a Kather class, ``x`` a QC-failed tissue tile, ``.`` no tile.
LETTER = {
    "A": "ADI", "B": "BACK", "D": "DEB", "L": "LYM", "U": "MUC",
    "M": "MUS", "N": "NORM", "S": "STR", "T": "TUM",
}


def make_tiles(
    layout: list[str],
    tile_um: float = 112.0,
    tissue_fraction: dict[tuple[int, int], float] | None = None,
    prob_lym: dict[tuple[int, int], float] | None = None,
    origin: tuple[int, int] = (0, 0),
) -> pl.DataFrame:
    """Tile table with one row per non-``.`` character of ``layout`` (row r, column c).

    ``tissue_fraction`` and ``prob_lym`` override the defaults (1.0, one-hot) per ``(r, c)``;
    ``origin`` shifts the grid by whole tiles ``(row, col)``.
    """
    tissue_fraction = tissue_fraction or {}
    prob_lym = prob_lym or {}
    rows = []
    for r, line in enumerate(layout):
        for c, ch in enumerate(line):
            if ch == ".":
                continue
            cls = LETTER.get(ch)
            row = {
                "x_px": (c + origin[1]) * 224, "y_px": (r + origin[0]) * 224,
                "w_px": 224, "h_px": 224,
                "x_um": (c + origin[1]) * tile_um, "y_um": (r + origin[0]) * tile_um,
                "tissue_fraction": tissue_fraction.get((r, c), 1.0),
                "qc_pass": cls is not None,
                "qc_reason": None if cls is not None else "blur",
                "pred_class": cls,
            }
            for k in KATHER_CLASSES:
                p = None if cls is None else float(k == cls)
                if k == "LYM" and (r, c) in prob_lym:
                    p = prob_lym[(r, c)]
                row[f"prob_{k}"] = p
            rows.append(row)
    schema = {
        "x_px": pl.Int64, "y_px": pl.Int64, "w_px": pl.Int64, "h_px": pl.Int64,
        "x_um": pl.Float64, "y_um": pl.Float64, "tissue_fraction": pl.Float32,
        "qc_pass": pl.Boolean, "qc_reason": pl.String, "pred_class": pl.String,
        **{f"prob_{k}": pl.Float32 for k in KATHER_CLASSES},
    }
    return pl.DataFrame(rows, schema=schema)


def make_nuclei(x_um, y_um, cell_class, tiles: pl.DataFrame | None = None,
                tile_um: float = 112.0) -> pl.DataFrame:
    """Nucleus table at the given centroids; ``tissue_class`` looked up from ``tiles``."""
    x = np.asarray(x_um, dtype=np.float64)
    y = np.asarray(y_um, dtype=np.float64)
    cells = np.broadcast_to(np.asarray(cell_class, dtype=object), x.shape)
    tissue = [None] * x.size
    if tiles is not None and x.size:
        lookup = {
            (round(r["y_um"] / tile_um), round(r["x_um"] / tile_um)): r["pred_class"]
            for r in tiles.select("x_um", "y_um", "pred_class").iter_rows(named=True)
        }
        tissue = [lookup.get((int(yy // tile_um), int(xx // tile_um))) for xx, yy in zip(x, y)]
    n = x.size
    return pl.DataFrame(
        {
            "x_um": x, "y_um": y,
            "x_px": np.round(x / 0.5), "y_px": np.round(y / 0.5),
            "area_um2": np.full(n, 40.0),
            "tissue_class": pl.Series(tissue, dtype=pl.String),
            "cell_class": pl.Series(list(cells), dtype=pl.String),
            "cell_prob": np.full(n, 0.9),
        }
    )
