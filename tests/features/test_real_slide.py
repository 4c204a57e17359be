"""build-features on a real Aperio slide gives every tile-stage feature, finite and plausible."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from immunodig.config import BuildConfig
from immunodig.features.catalog import catalog

SLIDE = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
         / "openslide-cmu-1-small-region" / "cmu_small_region.svs")
SLIDE_AREA_MM2 = 2220 * 2967 * 0.499**2 / 1e6  # whole scanned region


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not SLIDE.exists():
        pytest.skip(f"real slide absent: {SLIDE}")
    from immunodig.pipeline.build import build_features

    out = tmp_path_factory.mktemp("cmu")
    summary = build_features([SLIDE], out / "store.duckdb",
                             BuildConfig(nuclei_backend="classical"), executor="debug",
                             show_progress=False)
    assert summary.ok, [o.status for o in summary.outcomes]
    return out / "store.duckdb", summary


@pytest.fixture(scope="module")
def features(built) -> dict[str, float]:
    table = pl.read_parquet(next(Path(built[1].work_dir).glob("*/features.parquet")))
    return dict(zip(table["feature"], table["value"]))


def test_default_build_gives_a_plausible_nuclei_density_and_no_silent_zero(built, features):
    """The default build of the real Aperio slide segments its nuclei (hundreds per mm² at
    least: the saturated-pixel threshold bug gave 139/mm², all in one corner) and its QC
    measures reach the store without a nuclei_density_low flag."""
    from immunodig.store import query

    store, summary = built
    qc = query(store, "select * from slide_qc").to_dicts()
    assert len(qc) == 1
    assert qc[0]["nuclei_per_mm2"] > 1000, qc[0]["nuclei_per_mm2"]
    assert "nuclei_density_low" not in qc[0]["flags"]
    assert summary.outcomes[0].flags == tuple(f for f in qc[0]["flags"].split(",") if f)
    assert qc[0]["mpp_source"] == "metadata" and qc[0]["n_tiles"] > 0
    assert qc[0]["stain_h_od_r"] is not None
    assert features["til_density_tumour_region_per_mm2"] > 0 or \
        math.isnan(features["til_density_tumour_region_per_mm2"])


def test_full_tile_catalogue_finite_and_plausible(features):
    specs = catalog()
    # seg_* features need a structure model (build-features --structure-model), not in a default build
    he_features = {n for n, s in specs.items() if s.stage != "ihc" and "structures" not in s.inputs}
    assert he_features <= set(features), he_features - set(features)
    assert 0 < features["area_tissue_mm2"] <= SLIDE_AREA_MM2
    for name, value in features.items():
        assert not math.isinf(value), name
        if math.isnan(value):
            assert "NaN" in specs[name].description, name
            continue
        unit = specs[name].unit
        if unit in ("fraction",):
            assert 0 <= value <= 1, name
        elif unit in ("mm2", "count", "per_mm2", "mm"):
            assert value >= 0, name
        if unit == "mm2":
            assert value <= SLIDE_AREA_MM2 + 1e-9, name
    props = [features[f"prop_{s}"] for s in ("adipose", "debris", "lymphocytes", "mucus",
                                            "muscle", "normal_mucosa", "stroma", "tumour")]
    assert sum(props) == pytest.approx(1.0)
    assert 0 <= features["tissue_class_entropy_bits"] <= 3
