"""immunodig: H&E morphology, a DuckDB feature store and honest small-cohort models.

Sub-packages are imported on first use (``immunodig.models.model_matrix`` works after a plain
``import immunodig``), so heavy libraries (torch, cellpose, openslide) load only when needed.

Examples
--------
>>> import immunodig
>>> X = immunodig.models.model_matrix("cohort.duckdb", features="combined",
...                                   outcome="resistance")              # doctest: +SKIP
>>> immunodig.store.query("cohort.duckdb", "select count(*) from slides")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from types import ModuleType

from immunodig.vocab import CELL_CLASSES, KATHER_CLASSES

__version__ = "0.1.0"

#: Sub-packages reachable as attributes of ``immunodig``.
SUBPACKAGES: tuple[str, ...] = (
    "slides", "tissue", "nuclei", "features", "store", "clinical", "models", "evaluation",
    "report", "compute", "synthetic",
)

__all__ = ["__version__", "KATHER_CLASSES", "CELL_CLASSES", *SUBPACKAGES]


def __getattr__(name: str) -> ModuleType:
    if name in SUBPACKAGES:
        return importlib.import_module(f"immunodig.{name}")
    raise AttributeError(f"module 'immunodig' has no attribute {name!r}")
