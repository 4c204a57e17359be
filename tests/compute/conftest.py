"""Fixtures: a tiny generated cohort and an uninterrupted in-process build of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from immunodig.config import BuildConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
N_SLIDES = 3


@dataclass(frozen=True)
class Build:
    """A finished build: its store, per-slide folders, outcomes and store row counts."""

    store: Path
    work: Path
    status: dict[str, str]
    counts: dict[str, int]


def store_counts(store: Path) -> dict[str, int]:
    """Row count of every base table."""
    from immunodig.store import Store

    with Store.open(store, read_only=True) as s:
        return s.counts()


#: The executor tests exercise scheduling and resume, not the nuclei stage: tiles only
#: (the CLI runs in these tests pass ``--nuclei-backend none`` for the same run key).
TILES_ONLY = BuildConfig(nuclei_backend=None)


def build(cohort, out: Path, **kwargs) -> Build:
    """``build_features`` over the cohort into ``out``; kwargs go to it (executor, workers)."""
    from immunodig.pipeline.build import build_features

    store, work = out / "store.duckdb", out / "slides"
    summary = build_features([cohort.slides_dir], store, TILES_ONLY, manifest=cohort.manifest,
                             work_dir=work, show_progress=False, **kwargs)
    status = {o.slide_id or o.path: o.status for o in summary.outcomes}
    return Build(store, work, status, store_counts(store))


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """Three small synthetic H&E slides of two patients (1.5 mm square, 0.5 µm/px)."""
    from immunodig.synthetic.cohort import make_cohort

    paths = make_cohort(tmp_path_factory.mktemp("cohort"), n_patients=2, seed=7, slide_mm=1.5,
                        cd3_fraction=0.0)
    assert len(list(paths.slides_dir.glob("*.tiff"))) == N_SLIDES
    return paths


@pytest.fixture(scope="session")
def reference(cohort, tmp_path_factory) -> Build:
    """The uninterrupted build every other build is compared with (in-process)."""
    ref = build(cohort, tmp_path_factory.mktemp("reference"), executor="debug")
    assert sorted(ref.status.values()) == ["done"] * N_SLIDES
    return ref
