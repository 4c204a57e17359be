"""A slide's tile table laid out as 2-D arrays on the tile grid.

Every grid-based feature (composition neighbourhoods, invasive margin, lymphoid structures,
spatial statistics) works on the same :class:`TileMap`: one cell per tile, row ``r`` and column
``c`` being ``round(y_um / T)`` and ``round(x_um / T)`` for tile edge ``T = cfg.tile_size_um``.
Nuclei map to the cell that contains their centroid (tile ``c`` covers ``[c*T, (c+1)*T)`` µm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from immunodig.errors import ValidationError
from immunodig.vocab import KATHER_CLASSES

#: Columns of ``tiles.parquet`` the feature stage reads.
TILE_COLUMNS: tuple[str, ...] = (
    "x_um", "y_um", "tissue_fraction", "qc_pass", "pred_class",
    *(f"prob_{c}" for c in KATHER_CLASSES),
)
#: Columns of ``nuclei.parquet`` the feature stage reads.
NUCLEI_COLUMNS: tuple[str, ...] = ("x_um", "y_um", "tissue_class", "cell_class")

#: Grid code of a cell without a classified tile (no tile, or QC failed).
UNCLASSIFIED = -1
#: Grid code of each Kather class (its index in ``KATHER_CLASSES``).
CODE: dict[str, int] = {c: i for i, c in enumerate(KATHER_CLASSES)}


def check_columns(table: pl.DataFrame, required: tuple[str, ...], source: str) -> None:
    """Raise :class:`ValidationError` naming every column of ``required`` missing from ``table``."""
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValidationError(
            source,
            [{"row": None, "column": c, "check": "required column missing; rebuild this artefact"}
             for c in missing],
        )


@dataclass(frozen=True)
class TileMap:
    """Tile classes and tissue fractions on the tile grid.

    Attributes
    ----------
    tile_um : float
        Tile edge in µm.
    code : numpy.ndarray of int8, shape (rows, cols)
        Index of the predicted Kather class, or ``UNCLASSIFIED``.
    tissue_fraction : numpy.ndarray of float64, shape (rows, cols)
        Tissue fraction of the tile (0 where there is no tile).
    prob_lym : numpy.ndarray of float64, shape (rows, cols)
        Tile probability of the LYM class (0 where unclassified).
    row0, col0 : int
        Grid indices of the array's top-left cell.
    """

    tile_um: float
    code: np.ndarray
    tissue_fraction: np.ndarray
    prob_lym: np.ndarray
    row0: int
    col0: int

    @property
    def tile_area_mm2(self) -> float:
        """Area of one whole tile in mm²."""
        return (self.tile_um / 1000.0) ** 2

    @property
    def tissue_area_mm2(self) -> np.ndarray:
        """Tissue area of each cell in mm² (``tissue_fraction`` x tile area)."""
        return self.tissue_fraction * self.tile_area_mm2

    @property
    def classified(self) -> np.ndarray:
        """Cells holding a classified tile of a tissue class (any class but BACK)."""
        return (self.code != UNCLASSIFIED) & (self.code != CODE["BACK"])

    def is_class(self, name: str) -> np.ndarray:
        """Boolean grid of the cells predicted as Kather class ``name``."""
        return self.code == CODE[name]

    def cells_of(
        self, x_um: np.ndarray, y_um: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grid cell (row, col) containing each point, and whether it lies on the array.

        Returns
        -------
        rows, cols : numpy.ndarray of int64
            Array indices (clipped to the array; use ``inside`` to mask).
        inside : numpy.ndarray of bool
        """
        x = np.asarray(x_um, dtype=np.float64)
        y = np.asarray(y_um, dtype=np.float64)
        cols = np.floor(x / self.tile_um).astype(np.int64) - self.col0
        rows = np.floor(y / self.tile_um).astype(np.int64) - self.row0
        h, w = self.code.shape
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        return np.clip(rows, 0, max(h - 1, 0)), np.clip(cols, 0, max(w - 1, 0)), inside

    @classmethod
    def from_tiles(cls, tiles: pl.DataFrame, tile_um: float) -> "TileMap":
        """Lay ``tiles`` out on the grid of edge ``tile_um``.

        Tiles that fail QC, or whose ``pred_class`` is null, are ``UNCLASSIFIED`` but keep their
        tissue fraction. An empty table gives a 0 x 0 map.

        Raises
        ------
        ValidationError
            If a required column is missing, a class name is unknown or two tiles share a cell.
        """
        check_columns(tiles, TILE_COLUMNS, "tiles table")
        if tiles.height == 0:
            empty = np.zeros((0, 0))
            return cls(tile_um, empty.astype(np.int8), empty, empty, 0, 0)
        cols = np.round(tiles["x_um"].to_numpy().astype(np.float64) / tile_um).astype(np.int64)
        rows = np.round(tiles["y_um"].to_numpy().astype(np.float64) / tile_um).astype(np.int64)
        col0, row0 = int(cols.min()), int(rows.min())
        cols -= col0
        rows -= row0
        shape = (int(rows.max()) + 1, int(cols.max()) + 1)
        flat = rows * shape[1] + cols
        if np.unique(flat).size != flat.size:
            raise ValidationError(
                "tiles table",
                [{"row": None, "column": "x_um, y_um",
                  "check": f"several tiles fall on one grid cell of {tile_um:g} µm; "
                           "check that cfg.tile_size_um matches the tiling"}],
            )
        pred = tiles["pred_class"]
        unknown = set(pred.drop_nulls().unique().to_list()) - set(KATHER_CLASSES)
        if unknown:
            raise ValidationError(
                "tiles table",
                [{"row": None, "column": "pred_class",
                  "check": f"{len(unknown)} class name(s) outside {', '.join(KATHER_CLASSES)}"}],
            )
        qc = tiles["qc_pass"].fill_null(False).to_numpy().astype(bool)
        codes = pred.fill_null("").replace_strict(
            CODE, default=UNCLASSIFIED, return_dtype=pl.Int8
        ).to_numpy()
        codes = np.where(qc, codes, UNCLASSIFIED).astype(np.int8)
        code = np.full(shape, UNCLASSIFIED, dtype=np.int8)
        code.ravel()[flat] = codes
        frac = np.zeros(shape)
        frac.ravel()[flat] = np.clip(tiles["tissue_fraction"].fill_null(0).to_numpy(), 0, 1)
        plym = np.zeros(shape)
        lym = tiles["prob_LYM"].cast(pl.Float64).fill_null(0.0).to_numpy()
        plym.ravel()[flat] = np.where(qc, lym, 0.0)
        return cls(tile_um, code, frac, plym, row0, col0)
