"""The per-slide result folder: the one contract between workers, the store and the report.

Every stage that writes or reads a slide's results goes through this module: the names of all
artefacts, where folders live, the completion marker and its check, and the readers used by the
store's ingest and the report. A new artefact is added here once (see docs/architecture.md).

A slide's folder is complete for a run when ``manifest.json`` exists, names that run and every
file it lists exists with the recorded SHA-256. A result is built in ``<work_dir>/.partial/
<slide_id>/`` and swapped in whole when finished (:func:`publish`), so a killed worker leaves
nothing a rerun would take as done, and a failing run never destroys an earlier valid result;
a truncated file is detected and redone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from immunodig.errors import SlideDirError
from immunodig.provenance import file_sha256

SLIDE_JSON = "slide.json"
MASK_PNG = "mask.png"
TILES_PARQUET = "tiles.parquet"
CLASSMAP_PNG = "classmap.png"
NUCLEI_PARQUET = "nuclei.parquet"
FEATURES_PARQUET = "features.parquet"
IHC_CELLS_PARQUET = "ihc_cells.parquet"
REGISTRATION_JSON = "registration.json"
QC_JSON = "qc.json"
EMBEDDINGS_NPY = "embeddings.npy"
EMBEDDING_TILES_PARQUET = "embedding_tiles.parquet"
STRUCTURES_PARQUET = "structures.parquet"
MANIFEST_JSON = "manifest.json"
FAILURE_JSON = "failure.json"

#: Every artefact a slide folder can hold, with what it contains (docs/architecture.md).
ARTEFACTS: dict[str, str] = {
    SLIDE_JSON: "slide record: id, path, patient, stain, mpp and its source, size, vendor",
    MASK_PNG: "tissue mask at the build's mask_mpp (uint8 0/255)",
    TILES_PARQUET: "one row per grid tile: rectangle, QC measures, class probabilities",
    CLASSMAP_PNG: "RGB tile class map, one pixel per tile, Kather colours",
    NUCLEI_PARQUET: "one row per nucleus: centroid, morphology, cell class (H&E, nuclei stage)",
    FEATURES_PARQUET: "long table feature, value, feature_version",
    IHC_CELLS_PARQUET: "IHC slides: DAB-positive cells in the IHC frame",
    REGISTRATION_JSON: "IHC slides: rigid transform onto the patient's H&E slide",
    QC_JSON: "QC measures and plausibility flags (immunodig.pipeline.slide_qc)",
    EMBEDDINGS_NPY: "H&E, --embeddings: float16 tile embeddings (n_tiles, dim), one row per embedding_tiles row",
    EMBEDDING_TILES_PARQUET: "H&E, --embeddings: the embedded grid tiles and their class; encoder record in metadata",
    STRUCTURES_PARQUET: "one row per segmented structure: class, area, perimeter, centroid, probability, polygon",
    MANIFEST_JSON: "completion marker, written last: run, config, model hashes, file hashes",
    FAILURE_JSON: "instead of the manifest when the slide failed: reason and message",
}

#: Keys each JSON artefact must carry.
SLIDE_KEYS: tuple[str, ...] = (
    "slide_id", "path", "patient_id", "stain", "mpp_x", "mpp_y", "mpp_source", "width_px",
    "height_px", "level_count", "vendor", "checksum_sha256",
)
MANIFEST_KEYS: tuple[str, ...] = (
    "slide_id", "run_id", "code_version", "config", "config_hash", "model_hashes", "started_at",
    "finished_at", "files",
)
FAILURE_KEYS: tuple[str, ...] = ("path", "slide_id", "reason", "message", "run_id")


#: ``build-features --store-paths``: how a slide file's path is kept in ``slide.json``,
#: ``failure.json`` and the store (``slides.path``, ``slide_status.path``). The path carries the
#: file name, which often carries identifiers: ``relative`` keeps it relative to the folder
#: holding the store, ``none`` keeps no path at all (images then show "slide file not available").
STORE_PATHS: tuple[str, ...] = ("absolute", "relative", "none")


def check_store_paths(policy: str) -> None:
    """Raise ConfigError unless ``policy`` is one of :data:`STORE_PATHS`."""
    if policy not in STORE_PATHS:
        from immunodig.errors import ConfigError

        raise ConfigError(f"unknown --store-paths {policy!r}; use one of {', '.join(STORE_PATHS)}")


def stored_slide_path(path: str | Path, policy: str, store_dir: str | Path) -> str | None:
    """The form of a slide file's path that ``policy`` (:data:`STORE_PATHS`) stores.

    ``relative`` is relative to ``store_dir`` (the folder of the ``.duckdb`` file), with ``..``
    where the slide lies outside it.

    Raises
    ------
    ConfigError
        ``policy`` is not one of :data:`STORE_PATHS`.
    """
    import os

    check_store_paths(policy)
    if policy == "none":
        return None
    absolute = Path(path).resolve()
    if policy == "absolute":
        return str(absolute)
    return os.path.relpath(absolute, Path(store_dir).resolve())


def resolve_slide_path(stored: str | None, store_dir: str | Path) -> Path | None:
    """The slide file a stored path names: a relative one resolved against ``store_dir`` (the
    store's folder); ``None`` when no path was stored (``--store-paths none``)."""
    if not stored:
        return None
    path = Path(stored)
    return path if path.is_absolute() else Path(store_dir) / path


def redact_slide_path(message: str, path: str | Path, stored: str | None) -> str:
    """``message`` with the slide file's path (as given and absolute) replaced by its stored form,
    or by ``<slide file>`` when no path is stored."""
    absolute = str(Path(path).resolve())
    for form in sorted({absolute, str(path)}, key=len, reverse=True):
        message = message.replace(form, stored or "<slide file>")
    return message


def default_work_dir(store_path: str | Path) -> Path:
    """Per-slide folders live beside the store: ``<store stem>_slides/``."""
    p = Path(store_path)
    return p.with_name(f"{p.stem}_slides")


def slide_dir(work_dir: str | Path, slide_id: str) -> Path:
    """The result folder of one slide."""
    return Path(work_dir) / slide_id


def staging_dir(work_dir: str | Path, slide_id: str) -> Path:
    """Where a slide's result is built before :func:`publish` swaps it in (``.partial/``)."""
    return Path(work_dir) / ".partial" / slide_id


def publish(staging: Path, folder: Path) -> None:
    """Replace ``folder`` by the finished ``staging`` folder (the old one is removed after)."""
    import os

    old = staging.with_name(staging.name + ".old")
    discard(old)
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    discard(old)


def discard(path: Path) -> None:
    """Remove a staging (or replaced) folder and everything in it, if present."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def holds_valid_result(folder: Path) -> bool:
    """True when ``folder`` holds a complete result of any run (manifest and file hashes)."""
    manifest = read_manifest(folder)
    return manifest is not None and is_complete(folder, manifest.get("run_id", ""))


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a JSON artefact and check its keys.

    Raises
    ------
    SlideDirError
        The file is missing, not a JSON object, or lacks a required key.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SlideDirError(f"{path}: missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SlideDirError(f"{path}: not valid JSON (truncated?); rerun this slide") from exc
    if not isinstance(data, dict):
        raise SlideDirError(f"{path}: expected a JSON object")
    missing = [k for k in required if k not in data]
    if missing:
        raise SlideDirError(f"{path}: missing keys {missing}; rerun this slide")
    return data


def read_manifest(folder: Path) -> dict | None:
    """Return the parsed manifest, or ``None`` when absent or unreadable."""
    try:
        return json.loads((folder / MANIFEST_JSON).read_text())
    except (OSError, ValueError):
        return None


def check_files(folder: Path, manifest: dict[str, Any],
                required: tuple[str, ...] = (FEATURES_PARQUET,)) -> None:
    """Check that every file the manifest lists exists with its recorded SHA-256.

    ``required`` names files the manifest must list (what the store's ingest needs).

    Raises
    ------
    SlideDirError
        Naming the first file that is missing or differs.
    """
    files = manifest.get("files")
    where = folder / MANIFEST_JSON
    if not isinstance(files, dict) or any(name not in files for name in required):
        raise SlideDirError(f"{where}: 'files' must list {', '.join(required)} with their sha256")
    for name, expected in files.items():
        if Path(name).name != name:
            raise SlideDirError(f"{where}: file name {name!r} must not contain a folder")
        file = folder / name
        if not file.is_file():
            raise SlideDirError(f"{file}: listed in {MANIFEST_JSON} but missing; rerun this slide")
        if file_sha256(file) != expected:
            raise SlideDirError(f"{file}: SHA-256 differs from {MANIFEST_JSON} (truncated or "
                                "rewritten); rerun this slide")


def is_complete(folder: Path, run_id: str, result_key: str | None = None) -> bool:
    """True when ``folder`` holds a valid, complete result of ``run_id`` (hashes checked) and,
    when given, of the per-slide ``result_key`` (:func:`immunodig.pipeline.slide_job.result_key`)."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("run_id") != run_id:
        return False
    if result_key is not None and manifest.get("result_key") != result_key:
        return False
    try:
        check_files(folder, manifest, required=())
    except SlideDirError:
        return False
    return True


def hash_files(folder: Path, names: list[str]) -> dict[str, str]:
    """SHA-256 of each named file that exists in ``folder``."""
    return {n: file_sha256(folder / n) for n in names if (folder / n).is_file()}


def read_slide_record(folder: Path) -> dict[str, Any]:
    """``slide.json`` with the keys a reader needs to place anything on the slide."""
    return read_json(folder / SLIDE_JSON, ("mpp_x", "width_px", "height_px"))


def read_tiles(folder: Path):
    """``tiles.parquet`` as a polars DataFrame, or ``None`` when absent."""
    import polars as pl

    path = folder / TILES_PARQUET
    return pl.read_parquet(path) if path.is_file() else None


def read_nuclei(folder: Path, columns: list[str] | None = None):
    """``nuclei.parquet`` (only ``columns`` when given), or ``None`` when absent."""
    import polars as pl

    path = folder / NUCLEI_PARQUET
    return pl.read_parquet(path, columns=columns) if path.is_file() else None


def read_mask(folder: Path, slide: dict[str, Any]):
    """The tissue mask (bool array) and its µm/px, or ``(None, None)`` when absent.

    The resolution comes from the manifest's config (``mask_mpp``) or, without a manifest, from
    the mask's width against the slide's.
    """
    import numpy as np
    from PIL import Image

    path = folder / MASK_PNG
    if not path.is_file():
        return None, None
    mask = np.asarray(Image.open(path)) > 127
    try:
        mask_mpp = float(read_manifest(folder)["config"]["mask_mpp"])
    except (TypeError, KeyError, ValueError):
        mask_mpp = float(slide["mpp_x"]) * float(slide["width_px"]) / mask.shape[1]
    return mask, mask_mpp
