"""The catalogue is consistent, fully computed, documented, and its example SQL runs."""

from __future__ import annotations

import importlib
import math
import re
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from immunodig.config import BuildConfig
from immunodig.features import docs
from immunodig.features.catalog import catalog
from immunodig.features.slide_features import compute_slide_features

from .builders import make_nuclei, make_tiles

REPO = Path(__file__).resolve().parents[2]
MY_SPEC_MODULES = ("composition_specs", "margin_specs", "structures_specs", "spatial_specs")
UNIT_SUFFIX = {"mm2": "_mm2", "per_mm2": "_per_mm2", "um": "_um", "mm": "_mm",
               "fraction": "_fraction", "bits": "_bits"}


def test_docs_do_not_drift():
    committed = (REPO / "docs" / "features.md").read_text(encoding="utf-8")
    assert committed == docs.render(), (
        "docs/features.md is out of date: run `python -m immunodig.features.docs`"
    )


def test_declarations_are_consistent(monkeypatch):
    specs = catalog()
    for spec in specs.values():
        assert spec.unit and spec.description and spec.inputs, spec.name
        assert spec.version >= 1
        if spec.patient_aggregation == "area_weighted_mean":
            assert spec.weight in specs, f"{spec.name}: weight {spec.weight} not declared"
            assert specs[spec.weight].patient_aggregation == "sum", spec.name
    for name in declared_by(MY_SPEC_MODULES):
        suffix = UNIT_SUFFIX.get(specs[name].unit)
        if suffix and not name.startswith("prop_"):
            assert name.endswith(suffix), f"{name} should end with {suffix}"


def declared_by(modules: tuple[str, ...]) -> set[str]:
    """Names the given spec modules declare (their ``SPECS``)."""
    return {spec.name for name in modules
            for spec in importlib.import_module(f"immunodig.features.{name}").SPECS}


def test_full_set_is_computed(til_stub, monkeypatch):
    mine = declared_by(MY_SPEC_MODULES)
    monkeypatch.setitem(sys.modules, "immunodig.features.til", til_stub)
    tiles = make_tiles(["SSSTTT", "SLSTTT", "SSSTTT"])
    nuclei = make_nuclei([150.0, 400.0], [150.0, 150.0], ["lymphocyte", "epithelial"], tiles)
    without = compute_slide_features(tiles, None, 0.2, BuildConfig())
    full = compute_slide_features(tiles, nuclei, 0.2, BuildConfig())
    assert len(mine) > 50 and mine == set(full["feature"])
    specs = catalog()
    nuclei_only = set(full["feature"]) - set(without["feature"])
    assert nuclei_only and all("nuclei" in specs[n].inputs for n in nuclei_only)
    assert all("nuclei" not in specs[n].inputs for n in without["feature"])


def _sql_blocks() -> list[str]:
    text = (REPO / "docs" / "queries_features.md").read_text(encoding="utf-8")
    return re.findall(r"```sql\n(.*?)```", text, flags=re.S)


@pytest.fixture
def small_store():
    """In-memory store with 2 patients, 3 H&E slides of known composition and outcomes."""
    from immunodig.store.catalog_sync import sync_feature_catalog
    from immunodig.store.migrations import apply_migrations

    con = duckdb.connect()
    apply_migrations(con)
    sync_feature_catalog(con, catalog().values())
    con.execute("insert into runs (run_id, status) values ('r_1', 'done')")
    layouts = {"s_a": ["TTTT", "SSSS"], "s_b": ["TT", "LL"], "s_c": ["SS"]}
    owner = {"s_a": "p_1", "s_b": "p_1", "s_c": "p_2"}
    for slide, layout in layouts.items():
        con.execute("insert into slides (slide_id, patient_id, stain) values (?, ?, 'HE')",
                    [slide, owner[slide]])
        con.execute("insert into slide_status (slide_key, slide_id, run_id, status) "
                    "values (?, ?, 'r_1', 'done')", [slide, slide])
        f = compute_slide_features(make_tiles(layout), None, 0.1, BuildConfig())
        rows = f.with_columns(
            pl.lit(slide).alias("slide_id"), pl.lit("r_1").alias("run_id"),
            pl.when(pl.col("value").is_nan()).then(None).otherwise(pl.col("value")).alias("value"),
        ).select("slide_id", "run_id", "feature", "feature_version", "value")
        con.register("rows_df", rows.to_arrow())
        con.execute("insert into slide_features select * from rows_df")
        con.unregister("rows_df")
    for p, res in (("p_1", 0), ("p_2", 1)):
        con.execute("insert into patients (patient_id) values (?)", [p])
        con.execute("insert into outcomes (patient_id, best_response, pfs_months, pfs_event, "
                    "primary_resistance) values (?, 'PR', 12.0, 0, ?)", [p, res])
    yield con
    con.close()


def test_example_queries_run(small_store):
    blocks = _sql_blocks()
    assert len(blocks) >= 5
    results = [small_store.execute(sql).fetchall() for sql in blocks]
    assert all(results[:5]), "queries 1-5 should return rows on the small store"
    assert results[5] == []  # the check query finds no violation
    # Query 3: p_1's prop_tumour is weighted by classified area: (4 + 2) / (8 + 4) tiles.
    cols = [d[0] for d in small_store.execute(blocks[2]).description]
    row = dict(zip(cols, results[2][0]))
    assert row["patient_id"] == "p_1"
    assert row["prop_tumour"] == pytest.approx(6 / 12)
    assert row["area_tumour_mm2"] == pytest.approx(6 * 0.112**2)
    assert row["n_slides"] == 2
    # An undefined slide value (p_2 has no tumour) is NULL, not NaN.
    p2 = dict(zip(cols, results[2][1]))
    assert p2["tls_density_tumour_per_mm2"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in p2.values())
    assert np.isfinite(row["tsr_stroma_fraction"])


def test_every_stage_reaches_one_feature_set():
    """A feature of any declared stage joins exactly one feature set of the model matrix."""
    from immunodig.models.matrix import STAGES_OF_PART
    from immunodig.vocab import FEATURE_STAGES

    owners = [part for stages in STAGES_OF_PART.values() for part in stages]
    assert sorted(owners) == sorted(FEATURE_STAGES)
    assert {spec.stage for spec in catalog().values()} <= set(FEATURE_STAGES)


def test_a_spec_of_an_unknown_stage_or_aggregation_is_refused():
    from immunodig.errors import ConfigError
    from immunodig.features.feature_spec import FeatureSpec

    with pytest.raises(ConfigError, match="stage 'embedding'"):
        FeatureSpec("x_count", "count", "d", stage="embedding", inputs=("tiles",))
    with pytest.raises(ConfigError, match="patient_aggregation 'median'"):
        FeatureSpec("x_count", "count", "d", stage="tissue", inputs=("tiles",),
                    patient_aggregation="median")
