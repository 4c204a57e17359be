"""The per-slide artefact folder: names, completion marker, validity check.

A slide's folder is complete for a run when ``manifest.json`` exists, names that run and every
file it lists exists with the recorded SHA-256. The manifest is written last, so a killed worker
leaves no folder that a rerun would take as done, and a truncated file is detected and redone.
"""

from __future__ import annotations

import json
from pathlib import Path

from immunodig.provenance import file_sha256

SLIDE_JSON = "slide.json"
MASK_PNG = "mask.png"
TILES_PARQUET = "tiles.parquet"
CLASSMAP_PNG = "classmap.png"
NUCLEI_PARQUET = "nuclei.parquet"
FEATURES_PARQUET = "features.parquet"
MANIFEST_JSON = "manifest.json"
FAILURE_JSON = "failure.json"


def read_manifest(folder: Path) -> dict | None:
    """Return the parsed manifest, or ``None`` when absent or unreadable."""
    try:
        return json.loads((folder / MANIFEST_JSON).read_text())
    except (OSError, ValueError):
        return None


def is_complete(folder: Path, run_id: str) -> bool:
    """True when ``folder`` holds a valid, complete result of ``run_id`` (hashes checked)."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("run_id") != run_id:
        return False
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file() or file_sha256(path) != digest:
            return False
    return True


def hash_files(folder: Path, names: list[str]) -> dict[str, str]:
    """SHA-256 of each named file that exists in ``folder``."""
    return {n: file_sha256(folder / n) for n in names if (folder / n).is_file()}
