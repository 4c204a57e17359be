"""Per-slide embeddings: every tissue tile that passed QC, embedded and written streaming.

Artefacts (names in :mod:`immunodig.slide_folder`):

- ``embeddings.npy``: float16 ``(n_tiles, dim)``, filled batch by batch through
  ``numpy.lib.format.open_memmap`` (memory bounded by one batch of tiles);
- ``embedding_tiles.parquet``: one row per row of ``embeddings.npy``: the grid tile ``col, row,
  x_um, y_um, tile_um`` and its ``tissue_class`` (``pred_class`` of ``tiles.parquet``, null if
  none). Its Parquet metadata (key ``immunodig.embeddings``) names the encoder, its hash, tile size
  in µm and px and the code version, so files of different encoders are never mixed.

Tiles are read at the encoder's ``input_mpp`` and ``tile_size_px``, centred on the grid tile
(the field of view differs from the grid tile when the encoder's does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from immunodig import __version__
from immunodig import slide_folder as sf
from immunodig.errors import SlideArtefactError

#: Key of the encoder record in ``embedding_tiles.parquet``'s schema metadata.
PARQUET_METADATA_KEY = "immunodig.embeddings"
#: Columns of ``embedding_tiles.parquet``.
EMBEDDING_TILE_COLUMNS: tuple[str, ...] = ("col", "row", "x_um", "y_um", "tile_um", "tissue_class")


def embedded_rows(tiles: pl.DataFrame) -> np.ndarray:
    """Row indices of ``tiles`` to embed: tissue (not ``qc_background``) that passed tile QC."""
    keep = np.ones(tiles.height, bool)
    if "qc_background" in tiles.columns:
        keep &= ~tiles["qc_background"].fill_null(True).to_numpy().astype(bool)
    if "qc_pass" in tiles.columns:
        keep &= tiles["qc_pass"].fill_null(False).to_numpy().astype(bool)
    return np.flatnonzero(keep)


class _CentredTiles:
    """torch map-style Dataset: tile ``i`` read at the encoder's resolution, centred on the grid
    tile; one Slide per (worker) process."""

    def __init__(self, slide_path: str, mpp_override: float | None, centre_x_px: np.ndarray,
                 centre_y_px: np.ndarray, tile_size_px: int, read_mpp: float) -> None:
        self.slide_path, self.mpp_override = slide_path, mpp_override
        self.centre_x_px, self.centre_y_px = centre_x_px, centre_y_px
        self.tile_size_px, self.read_mpp = tile_size_px, read_mpp
        self._slide = None

    def __len__(self) -> int:
        return len(self.centre_x_px)

    def __getstate__(self) -> dict[str, Any]:  # never ship an open handle to a worker
        return {**self.__dict__, "_slide": None}

    def __getitem__(self, i: int):
        import torch

        if self._slide is None:
            from immunodig.slides import Slide

            self._slide = Slide(self.slide_path, mpp=self.mpp_override)
        t = self.tile_size_px
        half_px = 0.5 * t * self.read_mpp / self._slide.mpp
        tile = self._slide.read(self.centre_x_px[i] - half_px, self.centre_y_px[i] - half_px, size_px=(t, t),
                                mpp=self.read_mpp)
        return torch.from_numpy(np.ascontiguousarray(tile))


def encoder_record(encoder, tile_um: float, n_tiles: int) -> dict[str, Any]:
    """What ``embedding_tiles.parquet`` records about the encoder that made the embeddings."""
    return {"encoder": encoder.name, "encoder_sha256": encoder.file_sha256, "dim": int(encoder.dim),
            "n_tiles": int(n_tiles), "input_mpp": encoder.input_mpp, "tile_size_px": encoder.tile_size_px,
            "tile_um": float(tile_um), "code_version": __version__}


def embed_slide(slide_path: str | Path, tiles: pl.DataFrame, encoder, folder: Path, *,
                mpp: float | None = None, num_workers: int = 0) -> int:
    """Embed a slide's tissue tiles into ``folder`` (``embeddings.npy``, ``embedding_tiles.parquet``).

    Parameters
    ----------
    slide_path : str or Path
        The slide file.
    tiles : polars.DataFrame
        The slide's ``tiles.parquet`` table (grid, QC, classes).
    encoder : Encoder
        From :func:`immunodig.embeddings.load_encoder`.
    folder : Path
        The slide's (staging) result folder.
    mpp : float, optional
        Microns per pixel of a slide without it in its metadata.
    num_workers : int
        DataLoader worker processes reading tiles (0 reads in this process).

    Returns
    -------
    int
        Number of embedded tiles.
    """
    from torch.utils.data import DataLoader

    from immunodig.io import atomic_path
    from immunodig.slides import Slide

    rows = embedded_rows(tiles)
    sub = tiles[rows] if len(rows) else tiles.clear()
    with Slide(slide_path, mpp=mpp) as slide:
        slide_mpp = slide.mpp
    tile_um = float(tiles["w_px"][0]) * slide_mpp if tiles.height else 0.0
    cx = sub["x_px"].to_numpy() + 0.5 * sub["w_px"].to_numpy()
    cy = sub["y_px"].to_numpy() + 0.5 * sub["h_px"].to_numpy()
    dataset = _CentredTiles(str(slide_path), mpp, cx, cy, encoder.tile_size_px, encoder.input_mpp)
    cuda = encoder.device.startswith("cuda")
    loader = DataLoader(dataset, batch_size=encoder.batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=cuda, prefetch_factor=4 if num_workers > 0 else None)
    with atomic_path(folder / sf.EMBEDDINGS_NPY) as tmp:
        if not len(rows):  # a memory map cannot hold zero rows
            with open(tmp, "wb") as fh:
                np.save(fh, np.zeros((0, encoder.dim), np.float16))
        else:
            _embed_into(tmp, loader, encoder, len(rows))
    classes = sub["pred_class"] if "pred_class" in sub.columns else pl.Series([None] * sub.height, dtype=pl.Utf8)
    table = pl.DataFrame({
        "col": sub["col"].cast(pl.Int32), "row": sub["row"].cast(pl.Int32),
        "x_um": sub["x_um"].cast(pl.Float64), "y_um": sub["y_um"].cast(pl.Float64),
        "tile_um": pl.Series(np.full(sub.height, tile_um), dtype=pl.Float64),
        "tissue_class": classes.cast(pl.Utf8),
    })
    _write_with_record(folder / sf.EMBEDDING_TILES_PARQUET, table, encoder_record(encoder, tile_um, len(rows)))
    return len(rows)


def _embed_into(path: Path, loader, encoder, n_tiles: int) -> None:
    """Fill a float16 ``.npy`` memory map of ``(n_tiles, dim)`` batch by batch."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n_tiles, encoder.dim))
    start = 0
    for batch in loader:
        out[start:start + len(batch)] = encoder.embed_batch(batch)
        start += len(batch)
    out.flush()
    del out


def _write_with_record(path: Path, table: pl.DataFrame, record: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    from immunodig.io import atomic_path

    arrow = table.to_arrow()
    arrow = arrow.replace_schema_metadata({PARQUET_METADATA_KEY: json.dumps(record, sort_keys=True)})
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp, compression="zstd")


def read_embedding_record(folder: str | Path) -> dict[str, Any]:
    """The encoder record of a slide folder's ``embedding_tiles.parquet``.

    Raises
    ------
    SlideArtefactError
        The file is missing or carries no record.
    """
    import pyarrow.parquet as pq

    path = Path(folder) / sf.EMBEDDING_TILES_PARQUET
    if not path.is_file():
        raise SlideArtefactError(f"{path}: missing; run build-features with --embeddings")
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(PARQUET_METADATA_KEY.encode())
    if raw is None:
        raise SlideArtefactError(f"{path}: no '{PARQUET_METADATA_KEY}' record; rerun this slide")
    return json.loads(raw)


def read_slide_embeddings(folder: str | Path) -> tuple[pl.DataFrame, np.ndarray]:
    """A slide folder's embedded tiles and their embeddings.

    Parameters
    ----------
    folder : str or Path
        ``<work_dir>/<slide_id>/`` of a build run with ``--embeddings``.

    Returns
    -------
    tiles : polars.DataFrame
        ``col, row, x_um, y_um, tile_um, tissue_class``, one row per embedding.
    embeddings : numpy.ndarray
        float32 ``(n_tiles, dim)``.

    Raises
    ------
    SlideArtefactError
        Files missing, or rows / dimension disagreeing with the recorded encoder.
    """
    folder = Path(folder)
    record = read_embedding_record(folder)
    npy = folder / sf.EMBEDDINGS_NPY
    if not npy.is_file():
        raise SlideArtefactError(f"{npy}: missing; rerun this slide with --embeddings")
    emb = np.load(npy, mmap_mode="r")
    tiles = pl.read_parquet(folder / sf.EMBEDDING_TILES_PARQUET)
    if emb.ndim != 2 or emb.shape != (tiles.height, record["dim"]):
        raise SlideArtefactError(f"{npy}: shape {emb.shape} but {sf.EMBEDDING_TILES_PARQUET} has {tiles.height} "
                                 f"rows and the encoder {record['encoder']} gives dim {record['dim']}; rerun "
                                 "this slide")
    return tiles, np.asarray(emb, dtype=np.float32)
