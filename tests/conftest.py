"""Shared fixtures: location of the real public data beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests needing it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real public data not found at {SHARED_DATA}")
    return SHARED_DATA


def read_shared_csv(shared_data: Path, relative: str):
    """A CSV of ``../shared/data`` as a pandas DataFrame; the test skips when it is absent."""
    import pandas as pd

    path = shared_data / relative
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def cmu_slide(shared_data: Path) -> Path:
    """The real Aperio slide CMU-1-Small-Region (0.499 µm/px, one level)."""
    p = shared_data / "openslide-cmu-1-small-region" / "cmu_small_region.svs"
    if not p.is_file():
        pytest.skip(f"{p} missing")
    return p
