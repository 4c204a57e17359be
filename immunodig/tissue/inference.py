"""Inference engine: classify every tile of a slide's tile table.

Tiles are read (and, for feature models, turned into feature vectors) by torch DataLoader worker
processes, each opening its own openslide handle; the main process runs the model on batches under
``torch.inference_mode`` in channels-last layout, with bf16 autocast and pinned host memory on
CUDA.

Example
-------
>>> from immunodig.tissue.inference import classify_tiles            # doctest: +SKIP
>>> table = classify_tiles("slide.svs", tiles, num_workers=2)         # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from immunodig.errors import ConfigError
from immunodig.tissue.classifier import TileClassifier, load_tissue_classifier
from immunodig.vocab import KATHER_CLASSES

#: Relative mismatch tolerated between the tile table's tile edge (µm) and the model's.
TILE_SIZE_TOLERANCE = 0.02

_QC_REASONS: tuple[str | None, ...] = (None, "background", "pen", "blur")


class _SlideTiles:
    """torch map-style Dataset: reads tile ``i`` and prepares it; one Slide per process."""

    def __init__(self, slide_path: str, mpp_override: float | None, x_px: np.ndarray, y_px: np.ndarray,
                 tile_size_px: int, read_mpp: float, prepare: Callable[[np.ndarray], np.ndarray],
                 compute_qc: bool) -> None:
        self.slide_path, self.mpp_override = slide_path, mpp_override
        self.x_px, self.y_px = x_px, y_px
        self.tile_size_px, self.read_mpp = tile_size_px, read_mpp
        self.prepare, self.compute_qc = prepare, compute_qc
        self._slide = None

    def __len__(self) -> int:
        return len(self.x_px)

    def __getstate__(self) -> dict[str, Any]:  # never ship an open handle to a worker
        return {**self.__dict__, "_slide": None}

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        if self._slide is None:
            from immunodig.slides import Slide

            self._slide = Slide(self.slide_path, mpp=self.mpp_override)
        t = self.tile_size_px
        tile = self._slide.read(self.x_px[i], self.y_px[i], size_px=(t, t), mpp=self.read_mpp)
        out: dict[str, Any] = {"i": i}
        if self.compute_qc:
            from immunodig.slides.quality import tile_quality

            qc = tile_quality(tile)
            out |= {"qc_blur": float(qc["qc_blur"]), "qc_pen": bool(qc["qc_pen"]),
                    "qc_pass": bool(qc["qc_pass"]), "qc_reason": _QC_REASONS.index(qc["qc_reason"])}
        else:
            out["qc_pass"] = True
        out["x"] = torch.from_numpy(np.ascontiguousarray(self.prepare(tile)))
        return out


def classify_tiles(slide_path: str | Path, tiles: pl.DataFrame,
                   classifier: TileClassifier | str | Path | None = None, *,
                   mpp: float | None = None, batch_size: int = 64, num_workers: int = 2,
                   device: str | None = None, progress: bool = False) -> pl.DataFrame:
    """Classify the tiles of one slide.

    Parameters
    ----------
    slide_path : str or Path
        The slide file.
    tiles : polars.DataFrame
        Tile table with at least ``x_px, y_px, w_px`` (level-0). If it has ``qc_pass``, only
        rows where it is true are read and classified; otherwise every row not flagged
        ``qc_background`` is read, the quality flags ``qc_blur, qc_pen, qc_pass, qc_reason`` are
        computed on the read pixels (:func:`immunodig.slides.quality.tile_quality`) and only
        passing tiles are classified.
    classifier : TileClassifier, path or None
        A loaded classifier, a model file, or ``None`` for the shipped default.
    mpp : float, optional
        Microns per pixel for a slide without it in its metadata.
    batch_size, num_workers : int
        Batch size of the model; DataLoader worker processes (0 reads in this process).
    device : str, optional
        ``cpu``/``cuda``; default CUDA when available.
    progress : bool
        Show a progress bar.

    Returns
    -------
    polars.DataFrame
        ``tiles`` with ``prob_ADI ... prob_TUM`` (float32, null where not classified) and
        ``pred_class`` (str, null where not classified), plus the QC columns when computed here.

    Raises
    ------
    ConfigError
        The table's tile edge in µm differs from the model's ``tile_size_px * input_mpp``.
    """
    import torch
    from torch.utils.data import DataLoader

    from immunodig.slides import Slide

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    clf = classifier if isinstance(classifier, TileClassifier) else load_tissue_classifier(classifier)
    clf.to(device)
    slide_path = str(slide_path)
    with Slide(slide_path, mpp=mpp) as slide:
        slide_mpp = slide.mpp
    n = tiles.height
    model_tile_um = clf.tile_size_px * clf.input_mpp
    if n:
        table_tile_um = float(tiles["w_px"][0]) * slide_mpp
        if abs(table_tile_um - model_tile_um) > TILE_SIZE_TOLERANCE * model_tile_um:
            raise ConfigError(
                f"{Path(slide_path).name}: tile table has {table_tile_um:.1f} µm tiles but the model "
                f"{clf.path.name} expects {clf.tile_size_px} px at {clf.input_mpp} µm/px "
                f"({model_tile_um:.1f} µm); build the grid with target_mpp={clf.input_mpp}, "
                f"tile_size_px={clf.tile_size_px}")
    compute_qc = "qc_pass" not in tiles.columns
    if compute_qc:
        todo = ~tiles["qc_background"].to_numpy() if "qc_background" in tiles.columns else np.ones(n, bool)
    else:
        todo = tiles["qc_pass"].fill_null(False).to_numpy().astype(bool)
    rows = np.flatnonzero(todo)
    ds = _SlideTiles(slide_path, mpp, tiles["x_px"].to_numpy()[rows], tiles["y_px"].to_numpy()[rows],
                     clf.tile_size_px, clf.input_mpp, clf.prepare_fn, compute_qc)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.startswith("cuda"),
                        prefetch_factor=4 if num_workers > 0 else None,
                        persistent_workers=False)
    probs = np.full((n, len(KATHER_CLASSES)), np.nan, dtype=np.float32)
    qc_blur = np.full(n, np.nan)
    qc_pen = np.zeros(n, bool)
    qc_pass = todo.copy()
    qc_reason = np.array([None if t else "background" for t in todo], dtype=object)
    it = loader
    if progress:
        from tqdm import tqdm

        it = tqdm(loader, desc=Path(slide_path).name, unit="batch")
    for batch in it:
        idx = rows[batch["i"].numpy()]
        ok = batch["qc_pass"].numpy().astype(bool)
        if compute_qc:
            qc_blur[idx] = batch["qc_blur"].numpy()
            qc_pen[idx] = batch["qc_pen"].numpy()
            qc_pass[idx] = ok
            qc_reason[idx] = [_QC_REASONS[r] for r in batch["qc_reason"].numpy()]
        if ok.any():
            x = batch["x"] if ok.all() else batch["x"][torch.from_numpy(ok)]
            probs[idx[ok]] = clf.predict_batch(x)
    classified = ~np.isnan(probs[:, 0])
    pred = np.array([KATHER_CLASSES[k] if c else None for k, c in
                     zip(np.nan_to_num(probs).argmax(axis=1), classified)], dtype=object)
    out = tiles
    if compute_qc:
        out = out.with_columns(
            pl.Series("qc_blur", qc_blur, dtype=pl.Float64),
            pl.Series("qc_pen", qc_pen, dtype=pl.Boolean),
            pl.Series("qc_pass", qc_pass, dtype=pl.Boolean),
            pl.Series("qc_reason", qc_reason.tolist(), dtype=pl.Utf8),
        )
    out = out.with_columns(
        *[pl.Series(f"prob_{c}", probs[:, k], dtype=pl.Float32, nan_to_null=True)
          for k, c in enumerate(KATHER_CLASSES)],
        pl.Series("pred_class", pred.tolist(), dtype=pl.Utf8),
    )
    return out


def class_proportions(tiles: pl.DataFrame, exclude: tuple[str, ...] = ("BACK",)) -> dict[str, float]:
    """Fraction of classified tiles per Kather class, over tissue (``exclude`` removed).

    Returns
    -------
    dict
        ``{class: fraction}`` for every class not in ``exclude``; NaN when no tile counts.
    """
    keep = [c for c in KATHER_CLASSES if c not in exclude]
    pred = tiles["pred_class"].drop_nulls().to_list()
    counts = {c: 0 for c in keep}
    for p in pred:
        if p in counts:
            counts[p] += 1
    total = sum(counts.values())
    return {c: (v / total if total else float("nan")) for c, v in counts.items()}
