"""Finding slide files and reading the slide manifest (file -> patient, stain)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from immunodig.errors import ValidationError
from immunodig.pipeline.slide_job import SlideJob
from immunodig.vocab import STAINS

#: File extensions taken as slides when a folder is given (openslide formats).
SLIDE_EXTENSIONS: tuple[str, ...] = (
    ".svs", ".ndpi", ".mrxs", ".scn", ".tif", ".tiff", ".vms", ".vmu", ".bif", ".svslide", ".dcm",
)


def discover_slides(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of slide paths.

    Files given explicitly are kept whatever their extension (so a wrong file is reported as
    such rather than silently skipped); folders are searched recursively for
    :data:`SLIDE_EXTENSIONS`. A DICOM folder is one slide: its first ``.dcm`` file stands for it.
    """
    found: dict[Path, None] = {}
    for item in map(Path, inputs):
        if item.is_dir():
            dicom_dirs: set[Path] = set()
            for p in sorted(item.rglob("*")):
                if p.is_file() and p.suffix.lower() in SLIDE_EXTENSIONS and not p.name.startswith("."):
                    if p.suffix.lower() == ".dcm":
                        if p.parent in dicom_dirs:
                            continue
                        dicom_dirs.add(p.parent)
                    found[p.resolve()] = None
        else:
            found[item.resolve() if item.exists() else item] = None
    return list(found)


def read_slide_manifest(
    path: str | Path, pseudonym_key: bytes | None = None
) -> dict[str, tuple[str | None, str]]:
    """Read a CSV with columns ``file, patient_id[, stain]`` into ``{file name: (patient, stain)}``.

    ``file`` is matched against slide file names (base name). With ``pseudonym_key`` the
    ``patient_id`` values are raw identifiers, replaced by their keyed pseudonyms. Raises
    :class:`~immunodig.errors.ValidationError` naming row and column for missing columns,
    duplicate files and unknown stains.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError(str(path), [{"row": None, "column": None,
                                           "check": "slide manifest file not found"}])
    df = pl.read_csv(path, infer_schema_length=0)
    problems: list[dict] = []
    for col in ("file", "patient_id"):
        if col not in df.columns:
            problems.append({"row": None, "column": col, "check": "required column missing"})
    if problems:
        raise ValidationError(str(path), problems)
    if "stain" not in df.columns:
        df = df.with_columns(pl.lit("HE").alias("stain"))
    out: dict[str, tuple[str | None, str]] = {}
    for i, row in enumerate(df.iter_rows(named=True), start=1):
        name = Path(row["file"] or "").name
        if not name:
            problems.append({"row": i, "column": "file", "check": "empty"})
            continue
        if name in out:
            problems.append({"row": i, "column": "file", "check": "duplicate slide file"})
        stain = (row["stain"] or "HE").upper()
        if stain not in STAINS:
            problems.append({"row": i, "column": "stain", "check": f"not one of {list(STAINS)}"})
        out[name] = (row["patient_id"] or None, stain)
    if problems:
        raise ValidationError(str(path), problems)
    if pseudonym_key is not None:
        from immunodig.clinical.pseudonym import pseudonymise

        names = [n for n, (pid, _) in out.items() if pid is not None]
        pseudo = pseudonymise([out[n][0] for n in names], pseudonym_key)
        for n, pid in zip(names, pseudo):
            out[n] = (pid, out[n][1])
    return out


def make_jobs(paths: list[Path], manifest: dict[str, tuple[str | None, str]] | None) -> list[SlideJob]:
    """Attach patient and stain from the manifest (by file name) to each slide path."""
    jobs = []
    for p in paths:
        patient, stain = (manifest or {}).get(p.name, (None, "HE"))
        jobs.append(SlideJob(str(p), patient, stain))
    return jobs
