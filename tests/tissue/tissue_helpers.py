"""Helpers of the tissue tests: synthetic tile sets written as folder-per-class datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from immunodig.vocab import KATHER_CLASSES


def synthetic_tiles(n_per_class: int, seed: int, size_px: int = 224) -> tuple[np.ndarray, list[str]]:
    """``n_per_class`` tiles of every Kather class from the synthetic generator."""
    from immunodig.synthetic import render_class_tile

    rng = np.random.default_rng(seed)
    tiles, labels = [], []
    for _ in range(n_per_class):
        for c in KATHER_CLASSES:
            tiles.append(render_class_tile(c, size_px, 0.5, rng))
            labels.append(c)
    return np.stack(tiles), labels


def write_folder(root: Path, tiles: np.ndarray, labels: list[str], names: dict[str, str] | None = None) -> Path:
    """Write tiles as PNGs in one sub-folder per class (folder names optionally renamed)."""
    from PIL import Image

    for i, (t, c) in enumerate(zip(tiles, labels)):
        d = root / (names or {}).get(c, c)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(t).save(d / f"{c}-{i:04d}.png")
    return root
