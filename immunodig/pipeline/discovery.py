"""Finding slide files and reading the slide manifest (file -> patient, stain)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

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


#: How manifest rows find their slides (shown by ``build-features --help``).
MATCHING_RULES = (
    "A manifest row's `file` matches a slide when the slide's path ends with it, compared by "
    "whole path components: a base name (`a.svs`) or a relative path (`site1/a.svs`) for slides "
    "that share a base name. Every slide found must match exactly one row and every row exactly "
    "one slide; patient IDs are trimmed and must be pseudonyms (letters, digits, `_.-`) unless "
    "--key-file pseudonymises raw IDs."
)


#: A patient ID that contains a calendar date (dd.mm.yyyy, yyyy-mm-dd, ...) is refused.
_DATE_LIKE = re.compile(r"\b(\d{1,2}[./-]\d{1,2}[./-](\d{4}|\d{2})|\d{4}[./-]\d{1,2}[./-]\d{1,2})\b")


@dataclass(frozen=True)
class ManifestRow:
    """One row of the slide manifest (``row`` is the 1-based data row)."""

    row: int
    file: tuple[str, ...]
    patient_id: str | None
    stain: str


def _components(file: str) -> tuple[str, ...]:
    return tuple(part for part in PurePosixPath(file.strip().replace("\\", "/")).parts
                 if part not in ("", ".", "/"))


def read_slide_manifest(path: str | Path, pseudonym_key: bytes | None = None) -> list[ManifestRow]:
    """Read and check a CSV with columns ``file, patient_id[, stain]``.

    ``file`` is matched against slide paths by :data:`MATCHING_RULES`. With ``pseudonym_key`` the
    ``patient_id`` values are raw identifiers, replaced by their keyed pseudonyms; without it
    they must already be pseudonyms. Raises :class:`~immunodig.errors.ValidationError` naming
    row and column for missing columns, empty or duplicate files, invalid IDs and unknown
    stains, without echoing any value.
    """
    from immunodig.clinical.schema import PATIENT_ID_PATTERN

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
    rows: list[ManifestRow] = []
    seen: set[tuple[str, ...]] = set()
    pseudonym = re.compile(PATIENT_ID_PATTERN)
    for i, row in enumerate(df.iter_rows(named=True), start=1):
        file = _components(row["file"] or "")
        if not file:
            problems.append({"row": i, "column": "file", "check": "empty"})
            continue
        if file in seen:
            problems.append({"row": i, "column": "file", "check": "duplicate slide file"})
        seen.add(file)
        patient = (row["patient_id"] or "").strip() or None
        if patient is None:
            problems.append({"row": i, "column": "patient_id", "check": "empty"})
        elif _DATE_LIKE.search(patient):
            problems.append({"row": i, "column": "patient_id", "check": (
                "looks like a date (a birth date is an identifier); use the study pseudonym")})
        elif pseudonym_key is None and not pseudonym.match(patient):
            problems.append({"row": i, "column": "patient_id", "check": (
                "not a pseudonym (letters, digits, '_', '.', '-', at most 64); pass --key-file "
                "to pseudonymise raw hospital IDs")})
        stain = (row["stain"] or "HE").strip().upper()
        if stain not in STAINS:
            problems.append({"row": i, "column": "stain", "check": f"not one of {list(STAINS)}"})
        rows.append(ManifestRow(i, file, patient, stain))
    if problems:
        raise ValidationError(str(path), problems)
    if pseudonym_key is not None:
        from immunodig.clinical.pseudonym import pseudonymise

        pseudo = pseudonymise([r.patient_id for r in rows], pseudonym_key)
        rows = [replace(r, patient_id=pid) for r, pid in zip(rows, pseudo)]
    return rows


def make_jobs(paths: list[Path], manifest: list[ManifestRow] | None,
              source: str = "slide manifest") -> list[SlideJob]:
    """Attach patient and stain to each slide path; without a manifest every slide is an H&E
    slide of no patient.

    Raises
    ------
    ValidationError
        A row matches no slide or several, or a slide matches no row or several (every problem
        is listed, naming the row or the slide's file name).
    """
    if manifest is None:
        return [SlideJob(str(p)) for p in paths]
    problems: list[dict] = []
    row_of: dict[Path, list[ManifestRow]] = {p: [] for p in paths}
    for r in manifest:
        hits = [p for p in paths if Path(p).parts[-len(r.file):] == r.file]
        if not hits:
            problems.append({"row": r.row, "column": "file",
                             "check": "matches no slide among the inputs"})
        elif len(hits) > 1:
            problems.append({"row": r.row, "column": "file", "check": (
                f"matches {len(hits)} slides; give the path relative to the input folder")})
        else:
            row_of[hits[0]].append(r)
    for p, rows in row_of.items():
        if not rows:
            problems.append({"row": None, "column": "file",
                             "check": f"slide {Path(p).name} has no row"})
        elif len(rows) > 1:
            problems.append({"row": rows[1].row, "column": "file", "check": (
                f"slide {Path(p).name} is also matched by row {rows[0].row}")})
    if problems:
        raise ValidationError(source, problems)
    return [SlideJob(str(p), rows[0].patient_id, rows[0].stain) for p, rows in row_of.items()]


def refuse_duplicate_content(jobs: list[SlideJob], mpp: float | None = None) -> None:
    """Refuse two slide files with the same content (the same slide fingerprint).

    A slide's content can belong to one patient only, and two jobs of one slide would write one
    result folder. Files that cannot be opened are left to their job to report.

    Raises
    ------
    ValidationError
        One problem per duplicate, naming both files and both (pseudonymous) patients.
    """
    from immunodig.errors import ImmunodigError
    from immunodig.slides import Slide

    first: dict[str, SlideJob] = {}
    problems: list[dict] = []
    for job in jobs:
        try:
            with Slide(job.path, mpp=mpp) as slide:
                fingerprint = slide.fingerprint
        except ImmunodigError:
            continue
        if fingerprint in first:
            other = first[fingerprint]
            problems.append({"row": None, "column": "file", "check": (
                f"{Path(other.path).name} (patient {other.patient_id}) and {Path(job.path).name} "
                f"(patient {job.patient_id}) hold the same slide {fingerprint}; a slide belongs "
                "to one patient: remove one file or correct the manifest")})
        else:
            first[fingerprint] = job
    if problems:
        raise ValidationError("slides", problems)
