"""Fixtures of the report tests: one small real slide file and stores built once per session."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def slide_file(tmp_path_factory) -> Path:
    """A 1 mm synthetic H&E slide (pyramidal TIFF, 2000 x 2000 px at 0.5 µm/px)."""
    from immunodig.synthetic.slide import make_slide

    path = tmp_path_factory.mktemp("slide") / "he.tiff"
    make_slide(path, seed=3, slide_mm=1.0)
    return path


@pytest.fixture(scope="session")
def model_store(tmp_path_factory, slide_file) -> Path:
    """A store with slides, failures, clinical data, evaluations and fitted models."""
    from tests.report.builders import build_store

    return build_store(tmp_path_factory.mktemp("full"), slide_file, models=True)


@pytest.fixture(scope="session")
def bare_store(tmp_path_factory, slide_file) -> Path:
    """The same cohort without any model run (report sections must degrade)."""
    from tests.report.builders import build_store

    return build_store(tmp_path_factory.mktemp("bare"), slide_file, n_patients=12, models=False)


@pytest.fixture(scope="session")
def full_report(tmp_path_factory, model_store):
    """The HTML report of ``model_store`` (gallery of 4 slides) and its ReportInfo."""
    from immunodig.report import build_report

    out = tmp_path_factory.mktemp("report") / "report.html"
    return build_report(model_store, out, max_gallery=4)


@pytest.fixture(scope="session")
def he_cd3_store(tmp_path_factory, slide_file) -> Path:
    """Four patients with an H&E slide (tumour, margin, core, TLS, buds) and a CD3 slide each."""
    from tests.report.builders import build_he_cd3_store

    return build_he_cd3_store(tmp_path_factory.mktemp("he_cd3"), slide_file)


@pytest.fixture(scope="session")
def he_cd3_report(tmp_path_factory, he_cd3_store):
    """The HTML report of ``he_cd3_store`` (every slide in the gallery) and its ReportInfo."""
    from immunodig.report import build_report

    return build_report(he_cd3_store, tmp_path_factory.mktemp("he_cd3_report") / "report.html",
                        max_gallery=8)
