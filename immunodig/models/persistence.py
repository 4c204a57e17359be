"""Save and reload fitted models together with their metadata.

A model file is a joblib pickle of ``{"format", "estimator", "metadata"}``. The metadata records
the model name, task, outcome, feature set and feature columns, training size, library versions,
the creation time and a content hash of the training matrix, so a prediction can always be traced
to what it was fitted on. Pickles execute code when loaded: load only files you trust.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from immunodig import __version__
from immunodig.errors import ModelFileError
from immunodig.io import atomic_path

FORMAT = "immunodig-model/1"


def library_versions() -> dict[str, str]:
    """Versions of the libraries a fitted model depends on."""
    import lifelines
    import sklearn
    import xgboost

    return {"immunodig": __version__, "scikit-learn": sklearn.__version__,
            "xgboost": xgboost.__version__, "lifelines": lifelines.__version__}


def save_model(estimator: Any, path: str | Path, metadata: dict | None = None) -> Path:
    """Write a fitted estimator and its metadata atomically; returns the path.

    Parameters
    ----------
    estimator : fitted pipeline or estimator
    path : path
        Destination (``.joblib`` by convention).
    metadata : dict
        JSON-like facts about the fit (model, outcome, features, n, ...); library versions and
        the creation time are added.
    """
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**(metadata or {}), "versions": library_versions(),
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "validation": "none: a fitted model; see `evaluate` for internal validation"}
    with atomic_path(path) as tmp:
        joblib.dump({"format": FORMAT, "estimator": estimator, "metadata": meta}, tmp,
                    compress=3)
    return path


def load_model(path: str | Path) -> tuple[Any, dict]:
    """Return ``(estimator, metadata)`` from a file written by :func:`save_model`."""
    import joblib

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: model file not found; create one with `cli.py fit`")
    try:
        blob = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ModelFileError(f"{path}: not a readable model file ({type(exc).__name__})") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an immunodig model file (expected format {FORMAT})")
    return blob["estimator"], blob["metadata"]
