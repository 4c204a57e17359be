"""Exception hierarchy: one root error with precise subclasses.

Messages say what went wrong, where (file, row, column, slide id) and what to do, and never echo
patient identifiers or raw clinical values.
"""

from __future__ import annotations


class ImmunodigError(Exception):
    """Root of every error raised on purpose by immunodig."""


class SlideError(ImmunodigError):
    """A slide cannot be used; ``reason`` is a short machine-readable code.

    Parameters
    ----------
    message : str
        Human-readable explanation including what to do.
    reason : str
        One of ``not_found``, ``unsupported``, ``corrupt``, ``no_mpp``, ``mpp_implausible``,
        ``no_tissue``, ``failed`` (:data:`immunodig.vocab.FAILURE_REASONS`).
    """

    def __init__(self, message: str, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


class NoMppError(SlideError):
    """The slide carries no microns-per-pixel and none was given."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="no_mpp")


class ModelFileError(ImmunodigError):
    """A model/checkpoint file is missing, malformed or incompatible."""


class UnknownClassError(ModelFileError):
    """A model declares a class name outside the known vocabulary."""


class ModelMetadataError(ModelFileError):
    """A model file lacks metadata (architecture, class names, ...) or states invalid values."""


class UnsupportedLayoutError(ModelFileError):
    """A model file's layout or architecture is not one immunodig can reconstruct."""


class WeightsMismatchError(ModelFileError):
    """Weights in a model file do not fit the reconstructed network.

    Parameters
    ----------
    message : str
        Full explanation naming the file.
    missing, unexpected : list of str
        State-dict keys the network needs but the file lacks, and keys the network does not have.
    mismatched : list of str
        ``"key: file (shape) vs network (shape)"`` for keys present in both with other shapes.
    """

    def __init__(self, message: str, missing: list[str] | None = None,
                 unexpected: list[str] | None = None, mismatched: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.mismatched = list(mismatched or [])


class IPCWWeightWarning(UserWarning):
    """Inverse-probability-of-censoring weights are extreme (censoring survival near zero)."""


class SampleSizeWarning(UserWarning):
    """Too few patients or events for the number of candidate predictor parameters (Riley)."""


class InputWarning(UserWarning):
    """Modelling input that is used, but not as given; the message says what was done."""


class UninformativeFeatureWarning(InputWarning):
    """Covariates that are constant or entirely missing were left out of the model."""


class RepeatedPatientWarning(InputWarning):
    """Several rows share a patient identifier; they are scored as one patient (mean)."""


class ValidationError(ImmunodigError):
    """Input table failed validation; ``problems`` lists every failure found.

    Each problem is a dict with keys ``row`` (1-based data row or None), ``column`` and ``check``;
    no cell values are included so the message is safe to log.
    """

    def __init__(self, source: str, problems: list[dict]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s); nothing was written"]
        for p in problems[:50]:
            row = f"row {p['row']}" if p.get("row") is not None else "table"
            lines.append(f"  - {row}, column {p.get('column')!s}: {p['check']}")
        if len(problems) > 50:
            lines.append(f"  ... and {len(problems) - 50} more")
        super().__init__("\n".join(lines))


class IdentifierColumnError(ValidationError):
    """Input contains columns that look like direct patient identifiers."""


class StoreError(ImmunodigError):
    """The DuckDB store cannot be opened, migrated or written."""


class StoreLockedError(StoreError):
    """Another process holds the store open for writing."""


class QueryError(StoreError):
    """A read-only query failed or tried to change/escape the store."""


class ConfigError(ImmunodigError):
    """A configuration value is invalid."""


class NotFittedError(ImmunodigError, ValueError):
    """An estimator was used before ``fit``."""


class TileSizeError(ImmunodigError, ValueError):
    """Tiles do not have the size, dtype or channel count the model expects."""


class DatasetError(ImmunodigError):
    """An annotated dataset or tile folder is missing files, empty or unreadable."""


class PseudonymKeyError(ImmunodigError):
    """No usable pseudonymisation key was given."""


class UndeclaredFeatureError(ImmunodigError):
    """A computed feature is not declared in the catalogue, or its value is not allowed (inf)."""


class SlideDirError(StoreError):
    """A per-slide result folder is incomplete, truncated or inconsistent; nothing was written."""


class SlideArtefactError(SlideDirError):
    """A slide's result folder lacks what a picture or an export needs."""


class SectionUnavailable(ImmunodigError):
    """A report section cannot be drawn; the message says why (shown in the report)."""


class AnnotationError(ImmunodigError):
    """A QuPath GeoJSON annotation file cannot be used; the message names the file and feature index."""


class UnknownAnnotationClassError(AnnotationError):
    """An annotation's class is not one of the classes asked for (``--classes``)."""


class InvalidGeometryError(AnnotationError):
    """An annotation's geometry is not a valid polygon (self-intersection, too few points, not an area)."""


class AnnotationOutsideImageError(AnnotationError):
    """An annotation's coordinates fall outside the image or slide it belongs to."""


class MppMismatchError(ImmunodigError):
    """Two sources disagree on microns per pixel (a model and --mpp, or a slide and --image-mpp)."""


class BuildInterrupted(BaseException):
    """A build was stopped by SIGTERM or SIGINT (``signum``).

    A ``BaseException``, like ``KeyboardInterrupt``, so that the per-slide ``except Exception``
    of a job does not record it as a failing slide; ``str()`` says what was kept.
    """

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message)
        self.signum = signum
