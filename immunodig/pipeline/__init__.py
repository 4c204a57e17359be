"""Build orchestration: discovery, the per-slide job, resume and the single-writer ingest.

The pipeline drives the stages (slides, tissue, nuclei, features, store) and sits above them; no
stage imports it. Every per-slide file goes through :mod:`immunodig.slide_folder`.
"""

from __future__ import annotations

from immunodig.pipeline.build import BuildSummary, build_features
from immunodig.pipeline.status import ingest_work_dir, slide_status

__all__ = ["BuildSummary", "build_features", "ingest_work_dir", "slide_status"]
