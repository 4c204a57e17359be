"""Folder-per-class tile datasets (the NCT-CRC-HE-100K / CRC-VAL-HE-7K layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from immunodig.errors import DatasetError, UnknownClassError
from immunodig.tissue.checkpoint import kather_code
from immunodig.vocab import KATHER_CLASSES

#: File suffixes read as tiles.
TILE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg")



def list_folder_dataset(root: str | Path) -> list[tuple[Path, str]]:
    """List ``(file, kather_code)`` of a folder-per-class tile set, sorted by class then name.

    Folder names may be Kather codes or synonyms (``tumor``, ``stroma``, ...); hidden files and
    non-image files are ignored.

    Raises
    ------
    DatasetError
        ``root`` missing or holding no tiles.
    UnknownClassError
        A class folder whose name is not a Kather-9 class or synonym.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory; expected one sub-folder of tiles per class")
    items: list[tuple[Path, str]] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in sub.iterdir() if f.suffix.lower() in TILE_SUFFIXES and not f.name.startswith("."))
        if not files:
            continue
        code = kather_code(sub.name)
        if code is None:
            raise UnknownClassError(
                f"{sub}: folder name {sub.name!r} is neither a Kather-9 class nor a known synonym; "
                f"rename it to one of {', '.join(KATHER_CLASSES)}")
        items += [(f, code) for f in files]
    if not items:
        raise DatasetError(f"{root}: no tiles found (looked for {', '.join(TILE_SUFFIXES)} in "
                           "one sub-folder per class)")
    order = {c: i for i, c in enumerate(KATHER_CLASSES)}
    return sorted(items, key=lambda it: (order[it[1]], it[0].name))


def read_tile(path: str | Path, size_px: int | None = None) -> np.ndarray:
    """Read one tile as uint8 RGB; resized (bilinear) to ``size_px`` when given and different."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size_px is not None and im.size != (size_px, size_px):
                im = im.resize((size_px, size_px), Image.BILINEAR)
            return np.asarray(im)
    except OSError as exc:
        raise DatasetError(f"{path}: unreadable image ({exc})") from exc


def tile_of(item: Any, size_px: int) -> np.ndarray:
    """A training item as a tile: an in-memory uint8 array as it is, a file path read."""
    if isinstance(item, np.ndarray):
        return item
    return read_tile(item, size_px)
