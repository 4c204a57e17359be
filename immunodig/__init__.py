"""immunodig: H&E morphology, a DuckDB feature store and honest small-cohort models.

Heavy libraries (torch, cellpose, openslide) are imported lazily inside the functions that need
them, so ``import immunodig`` stays fast.
"""

from __future__ import annotations

from immunodig.vocab import CELL_CLASSES, KATHER_CLASSES

__version__ = "0.1.0"

__all__ = ["__version__", "KATHER_CLASSES", "CELL_CLASSES"]
