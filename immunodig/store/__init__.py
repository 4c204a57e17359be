"""The DuckDB store: migrations from ``sql/``, single-writer ingest, read-only queries."""

from __future__ import annotations

from immunodig.store.connection import Store
from immunodig.store.ingest import IngestResult, SlideDirError
from immunodig.store.query import query

__all__ = ["Store", "IngestResult", "SlideDirError", "query"]
