"""Nuclei over a whole slide: blocks of QC-passed tiles, overlap, de-duplication, streaming Parquet.

The tile grid (edge ``T = cfg.tile_size_um``) is grouped into blocks of ``block_tiles`` x
``block_tiles`` cells. Each block is read at ``cfg.nuclei_mpp`` with ``overlap_um`` of context on
every side, segmented, measured and classified. A nucleus is kept by the block whose core contains
its centroid, and only when that centroid lies in a QC-passed tile: block cores partition the
plane, so no nucleus is counted twice, and the overlap (larger than any nucleus) means no kept
nucleus is cut by the read window. Nuclei touching the outer edge of a read are dropped (their
centroid always lies in the overlap, which the neighbouring block owns). The tiling keeps whole
tiles only; the strip narrower than a tile along the slide's right and bottom edges counts as part
of the adjacent edge tile here (nuclei only: tile areas and the features that divide by them are
those of whole tiles), so nuclei cover the tissue up to the slide edge. The same blocks, read the
same way, are what ``eval-lymphocytes`` and ``eval-nuclei`` score (:func:`iter_slide_nuclei`,
:mod:`immunodig.nuclei.image_slide`). Rows are streamed to
``nuclei.parquet`` with a ``pyarrow.parquet.ParquetWriter`` in row groups, so memory stays bounded
by one block and one row group.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.config import BuildConfig
from immunodig.nuclei.morphology import MORPHOLOGY_COLUMNS, measure_nuclei

#: Columns of ``nuclei.parquet`` in order (docs/architecture.md).
NUCLEI_SCHEMA_COLUMNS: tuple[str, ...] = ("x_um", "y_um", *MORPHOLOGY_COLUMNS, "tissue_class", "cell_class",
                                          "cell_prob")


def nuclei_schema():
    """pyarrow schema of ``nuclei.parquet``."""
    import pyarrow as pa

    fields = [pa.field(c, pa.float64()) for c in ("x_um", "y_um", "x_px", "y_px")]
    fields += [pa.field(c, pa.float32()) for c in MORPHOLOGY_COLUMNS[2:]]
    fields += [
        pa.field("tissue_class", pa.string()),
        pa.field("cell_class", pa.string()),
        pa.field("cell_prob", pa.float32()),
    ]
    return pa.schema(fields)


def get_cell_classifier(cfg: BuildConfig):
    """Cell classifier named by ``cfg.cell_classifier``: ``"rule"``, a model path, or ``None`` =
    the shipped default (patch-CNN ensemble, :mod:`immunodig.nuclei.patch_ensemble`)."""
    from immunodig.nuclei.cell_classifier import load_cell_classifier
    from immunodig.nuclei.rule_classifier import RuleCellClassifier

    choice = cfg.cell_classifier
    if choice == "rule":
        return RuleCellClassifier()
    return load_cell_classifier(choice)


def model_files(cfg: BuildConfig) -> dict[str, Path]:
    """Model files the nuclei stage of ``cfg`` reads, by role (for the run key's hashes)."""
    from immunodig.nuclei.cell_classifier import default_model_path

    files: dict[str, Path] = {}
    if cfg.nuclei_model is not None and Path(cfg.nuclei_model).exists():
        files["nuclei"] = Path(cfg.nuclei_model)
    choice = cfg.cell_classifier
    if choice != "rule":
        files["cell_classifier"] = Path(choice) if choice else default_model_path()
    return files


def segment_region(rgb: np.ndarray, mpp: float, segmenter: Any, classifier: Any,
                   select: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
                   ) -> dict[str, np.ndarray]:
    """Segment one image, then measure and classify its nuclei (no de-duplication).

    ``select(x_px, y_px, touches_edge)`` (centroids and edge contact of every instance) returns
    which instances to keep; only those are measured and classified, the others stay context for
    the classifier. Returns the morphology columns plus ``cell_class``, ``cell_prob``,
    ``touches_edge`` (one row per kept instance, ascending), ``labels`` (the int32 instance map,
    numbered 1..N sequentially) and ``ids`` (the kept instances' numbers in ``labels``).
    """
    from skimage.segmentation import relabel_sequential

    from immunodig.nuclei.morphology import instance_centroids, only_instances
    from immunodig.nuclei.rule_classifier import RuleCellClassifier

    labels = relabel_sequential(np.asarray(segmenter.segment(rgb, mpp), dtype=np.int32))[0]
    n = int(labels.max())
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    touches = np.zeros(n + 1, dtype=bool)
    touches[edge] = True
    touches = touches[1:]
    ids = np.arange(1, n + 1)
    if select is not None and n:
        xy = instance_centroids(labels)
        ids = ids[np.asarray(select(xy[:, 0], xy[:, 1], touches), dtype=bool)]
    subset = None if len(ids) == n else ids
    morph = measure_nuclei(rgb, only_instances(labels, subset), mpp)
    if isinstance(classifier, RuleCellClassifier):
        cls, prob = classifier.classify(morph)
    elif len(ids):
        cls, prob = classifier.classify_nuclei(rgb, labels, mpp, ids=subset)
    else:
        cls, prob = np.zeros(0, dtype=str), np.zeros(0)
    return {
        **morph,
        "cell_class": np.asarray(cls, dtype=str),
        "cell_prob": np.asarray(prob, dtype=float),
        "touches_edge": touches[ids - 1],
        "labels": labels,
        "ids": ids,
    }


@dataclass
class BlockNuclei:
    """The nuclei one block keeps: ``rows`` (the ``nuclei.parquet`` columns) and, for scoring
    masks, the block's instance map ``labels`` with the ids (1-based) of the kept instances."""

    block: "Block"
    rows: dict[str, np.ndarray]
    labels: np.ndarray
    kept_ids: np.ndarray


def iter_slide_nuclei(
    slide: Any,
    tiles: Any,
    cfg: BuildConfig,
    segmenter: Any = None,
    classifier: Any = None,
    overlap_um: float = 16.0,
    block_tiles: int = 4,
) -> Iterator[BlockNuclei]:
    """The nuclei of a slide block by block: what :func:`segment_slide` writes and what
    ``eval-lymphocytes`` / ``eval-nuclei`` score (one code path; parameters as there)."""
    from immunodig.nuclei.segmenter import get_segmenter

    segmenter = segmenter or get_segmenter(cfg.nuclei_backend, cfg.nuclei_model)
    classifier = classifier if classifier is not None else get_cell_classifier(cfg)
    mpp = cfg.nuclei_mpp
    mpp_x = float(getattr(slide, "mpp_x", slide.mpp))
    mpp_y = float(getattr(slide, "mpp_y", slide.mpp))
    for block in iter_blocks(slide, tiles, cfg.tile_size_um, mpp, overlap_um, block_tiles):
        kept_class: list[np.ndarray] = []  # the tile class of each kept nucleus, from the one lookup

        def owned(x_px: np.ndarray, y_px: np.ndarray, touches: np.ndarray, block=block,
                  kept_class=kept_class) -> np.ndarray:
            keep, tclass = block.owned(*block.to_um(x_px, y_px), touches)
            kept_class.append(tclass[keep])
            return keep

        res = segment_region(block.rgb, mpp, segmenter, classifier, select=owned)
        x_um, y_um = block.to_um(res["x_px"], res["y_px"])
        tclass = kept_class[0] if kept_class else np.zeros(0, dtype=object)
        rows = {c: res[c] for c in MORPHOLOGY_COLUMNS[2:]}
        rows.update(
            x_um=x_um,
            y_um=y_um,
            x_px=x_um / mpp_x,
            y_px=y_um / mpp_y,
            tissue_class=tclass,
            cell_class=res["cell_class"],
            cell_prob=res["cell_prob"],
        )
        yield BlockNuclei(block, rows, res["labels"], res["ids"])


def segment_slide(
    slide: Any,
    tiles: Any,
    cfg: BuildConfig,
    out_path: str | Path,
    segmenter: Any = None,
    classifier: Any = None,
    overlap_um: float = 16.0,
    block_tiles: int = 4,
    row_group_size: int = 100_000,
) -> int:
    """Segment the nuclei of every QC-passed tile of a slide into ``out_path`` (Parquet).

    Parameters
    ----------
    slide : immunodig.slides.Slide
        Anything with ``read(x_px, y_px, size_px, mpp)`` and ``mpp`` (and optionally ``mpp_x``,
        ``mpp_y``, and ``size_um`` for the edge strip).
    tiles : polars.DataFrame
        The slide's tile table (``x_um, y_um, qc_pass, pred_class``).
    cfg : BuildConfig
        ``nuclei_backend``, ``nuclei_model``, ``nuclei_mpp``, ``tile_size_um``, ``extra``.
    out_path : path
        Written atomically (temporary name, then ``os.replace``).
    segmenter, classifier : optional
        Override the ones ``cfg`` names.
    overlap_um : float
        Context read around each block; must exceed the largest nucleus diameter plus half the
        classifier's patch.
    block_tiles : int
        Tiles per block edge.

    Returns
    -------
    int
        Number of nuclei written.
    """
    import pyarrow.parquet as pq

    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".tmp")
    schema = nuclei_schema()
    buffer: list[dict[str, np.ndarray]] = []
    buffered = written = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for part in iter_slide_nuclei(slide, tiles, cfg, segmenter, classifier, overlap_um, block_tiles):
            n = len(part.rows["x_um"])
            if not n:
                continue
            buffer.append(part.rows)
            buffered += n
            if buffered >= row_group_size:
                written += _flush(writer, buffer, schema)
                buffer, buffered = [], 0
        written += _flush(writer, buffer, schema)
    os.replace(tmp, out_path)
    return written


@dataclass
class Block:
    """One read window: ``rgb`` at ``mpp`` with top-left ``origin_um``; owns the cells of ``key``.

    ``grid`` = (columns, rows) of whole tiles and ``extent_um`` = the slide's (width, height):
    a point right of the last whole column (below the last whole row) but on the slide counts as
    lying in that edge tile, so the strip the tiling leaves at the slide edge is covered.
    """

    rgb: np.ndarray
    mpp: float
    origin_um: tuple[float, float]
    key: tuple[int, int]
    block_tiles: int
    tile_um: float
    tile_class: dict[tuple[int, int], Any]
    grid: tuple[int, int] | None = None
    extent_um: tuple[float, float] | None = None

    def to_um(self, x_px: np.ndarray, y_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates of the read -> slide µm."""
        return self.origin_um[0] + np.asarray(x_px) * self.mpp, self.origin_um[1] + np.asarray(y_px) * self.mpp

    def tile_of(self, x_um: np.ndarray, y_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(column, row) of the tile each point counts in (edge strip -> edge tile)."""
        x, y = np.asarray(x_um, dtype=float), np.asarray(y_um, dtype=float)
        tc = np.floor(x / self.tile_um).astype(np.int64)
        tr = np.floor(y / self.tile_um).astype(np.int64)
        if self.grid is not None and self.extent_um is not None:
            tc = np.where(x < self.extent_um[0], np.minimum(tc, max(self.grid[0] - 1, 0)), tc)
            tr = np.where(y < self.extent_um[1], np.minimum(tr, max(self.grid[1] - 1, 0)), tr)
        return tc, tr

    def owned(self, x_um: np.ndarray, y_um: np.ndarray, touches_edge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which objects this block keeps (centroid in its core, in a QC-passed tile, not cut by
        the read edge), and the ``pred_class`` of their tile."""
        tc, tr = self.tile_of(x_um, y_um)
        own = (
            (tr // self.block_tiles == self.key[0])
            & (tc // self.block_tiles == self.key[1])
            & ~np.asarray(touches_edge)
        )
        missing = object()
        found = [self.tile_class.get((int(r), int(c)), missing) for r, c in zip(tr, tc)]
        in_tile = np.array([f is not missing for f in found], dtype=bool)
        tclass = np.array([None if f is missing else f for f in found], dtype=object)
        return own & in_tile, tclass


def slide_extent_um(slide: Any) -> tuple[float, float] | None:
    """(width, height) of the slide in µm: ``size_um``, else ``dimensions`` x mpp, else ``None``."""
    if hasattr(slide, "size_um"):
        return tuple(float(v) for v in slide.size_um)
    if hasattr(slide, "dimensions"):
        w, h = slide.dimensions
        return w * float(getattr(slide, "mpp_x", slide.mpp)), h * float(getattr(slide, "mpp_y", slide.mpp))
    return None


def iter_blocks(
    slide: Any, tiles: Any, tile_um: float, mpp: float, overlap_um: float, block_tiles: int
) -> Iterator[Block]:
    """Yield the read windows covering every QC-passed tile (see module docstring).

    A block holding the last whole column (row) of the grid reaches to the slide's right
    (bottom) edge, so the strip narrower than a tile there is segmented too.
    """
    import polars as pl

    mpp_x = float(getattr(slide, "mpp_x", slide.mpp))
    mpp_y = float(getattr(slide, "mpp_y", slide.mpp))
    passed = tiles.filter(pl.col("qc_pass").fill_null(False))
    cols = np.round(passed["x_um"].to_numpy() / tile_um).astype(np.int64)
    rows = np.round(passed["y_um"].to_numpy() / tile_um).astype(np.int64)
    classes = passed["pred_class"].to_list() if "pred_class" in passed.columns else [None] * passed.height
    tile_class = {(int(r), int(c)): t for r, c, t in zip(rows, cols, classes)}
    keys = sorted({(int(r) // block_tiles, int(c) // block_tiles) for r, c in zip(rows, cols)})
    extent = slide_extent_um(slide)
    grid = None if extent is None else (int(extent[0] // tile_um), int(extent[1] // tile_um))
    pad_px = int(np.ceil(overlap_um / mpp))
    block_um = block_tiles * tile_um
    for br, bc in keys:
        x0_um, y0_um = bc * block_um, br * block_um
        x1_um, y1_um = x0_um + block_um, y0_um + block_um
        if grid is not None:
            if (bc + 1) * block_tiles >= grid[0]:
                x1_um = max(x1_um, extent[0])
            if (br + 1) * block_tiles >= grid[1]:
                y1_um = max(y1_um, extent[1])
        size = (int(np.ceil((x1_um - x0_um) / mpp)) + 2 * pad_px, int(np.ceil((y1_um - y0_um) / mpp)) + 2 * pad_px)
        rx_um, ry_um = x0_um - pad_px * mpp, y0_um - pad_px * mpp
        rgb = slide.read(rx_um / mpp_x, ry_um / mpp_y, size, mpp)
        yield Block(rgb, mpp, (rx_um, ry_um), (br, bc), block_tiles, tile_um, tile_class, grid, extent)


def _flush(writer: Any, buffer: list[dict[str, np.ndarray]], schema: Any) -> int:
    import pyarrow as pa

    if not buffer:
        return 0
    arrays = []
    for f in schema:
        values = np.concatenate([b[f.name] for b in buffer])
        if pa.types.is_string(f.type):
            arrays.append(pa.array([None if v is None else str(v) for v in values], type=f.type))
        else:
            arrays.append(pa.array(values.astype(f.type.to_pandas_dtype()), type=f.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    writer.write_table(table)
    return table.num_rows
