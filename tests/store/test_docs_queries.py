"""Every example query in docs/queries/ runs read-only on a filled store and returns rows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunodig.clinical import import_clinical, import_genomic, import_multiplex
from immunodig.store import Store, query

from .conftest import write_slide_dir

QUERIES = sorted((Path(__file__).resolve().parents[2] / "docs" / "queries").glob("*.sql"))
RESPONSES = ["PD", "SD", "PR", "CR"]


def _features(names, rng) -> dict[str, float]:
    return {n: float(rng.uniform(0.5, 5.0) if "_mm2" in n or "area" in n else rng.uniform(0, 1000)) for n in names}


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory):
    from immunodig.features.catalog import catalog
    try:
        specs = catalog()
    except ImportError as exc:
        pytest.skip(f"feature declarations not importable yet: {exc}")
    tmp = tmp_path_factory.mktemp("docs")
    rng = np.random.default_rng(0)
    patients = [f"P_{i:04d}" for i in range(1, 13)]
    clinical = pd.DataFrame({
        "patient_id": patients, "age_years": rng.integers(30, 85, 12), "sex": ["F", "M"] * 6,
        "primary_side": ["right", "left", "rectum"] * 4, "ras_status": ["wt", "mut"] * 6,
        "braf_status": ["wt"] * 12, "lynch": [0, 1] * 6, "ecog": [0, 1, 2] * 4,
        "ici_regimen": ["anti-PD-1", "anti-PD-1+anti-CTLA-4", "other", "anti-PD-1"] * 3,
        "treatment_line": [1, 2] * 6, "best_response": RESPONSES * 3,
        "pfs_months": [2.0, 9.0, 14.0, 20.0] * 3, "pfs_event": [1, 1, 0, 0] * 3,
        "os_months": [6.0, 18.0, 24.0, 30.0] * 3, "os_event": [1, 0, 0, 0] * 3,
    })
    clinical.to_csv(tmp / "clinical.csv", index=False)
    pd.DataFrame({"patient_id": patients, "tmb": rng.uniform(5, 80, 12),
                  "kras_mutated": ["wt", "mut"] * 6}).to_csv(tmp / "genomic.csv", index=False)
    pd.DataFrame({"patient_id": patients, "marker": "CD8", "compartment": "tumour",
                  "density_per_mm2": rng.uniform(10, 900, 12)}).to_csv(tmp / "multiplex.csv", index=False)
    store_path = tmp / "store.duckdb"
    work = tmp / "work"
    he_names = [n for n, s in specs.items() if s.stage != "ihc"]
    ihc_names = [n for n, s in specs.items() if s.stage == "ihc"] + ["area_tumour_mm2", "area_stroma_mm2"]
    with Store.open(store_path) as store:
        store.sync_feature_catalog(specs.values())
        for i, pid in enumerate(patients):
            for k in range(1 + i % 2):
                store.ingest_slide_dir(write_slide_dir(work, f"s_{i:08d}{k:08d}", pid, _features(he_names, rng)))
            if i % 4 == 0:
                store.ingest_slide_dir(write_slide_dir(work, f"s_{i:08d}000000cd", pid,
                                                       _features(ihc_names, rng), stain="CD3"))
        store.ingest_slide_dir(write_slide_dir(work, "s_0000000000000000", "P_0001", _features(he_names, rng),
                                               run_id="r_00000000000000bb", config_hash="e" * 64,
                                               finished_at="2024-06-01T10:00:00+00:00"))
        store.record_failure(run_id="r_00000000000000aa", reason="corrupt", message="tile read failed",
                             path="/data/slides/broken.svs")
        import_clinical(tmp / "clinical.csv", store)
        import_genomic(tmp / "genomic.csv", store)
        import_multiplex(tmp / "multiplex.csv", store)
        assert not any(df.height for df in store.run_checks().values()), store.run_checks()
    return store_path


def test_there_are_a_dozen_documented_queries():
    assert len(QUERIES) >= 12
    for path in QUERIES:
        assert path.read_text().startswith("--"), f"{path.name} must open with a comment"


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_query_runs_and_returns_rows(filled_store, path):
    text = path.read_text()
    match = re.search(r"^-- params: (\{.*\})$", text, flags=re.M)
    params = json.loads(match.group(1)) if match else None
    df = query(filled_store, text, params)
    assert df.height >= 1, f"{path.name} returned no rows"


def test_checks_are_clean_and_catch_a_planted_problem(filled_store, tmp_path):
    import shutil
    copy = tmp_path / "copy.duckdb"
    shutil.copy(filled_store, copy)
    with Store.open(copy) as store:
        assert all(df.height == 0 for df in store.run_checks().values())
        store.connection.execute("insert into slide_features values ('s_ghost', 'r_x', 'prop_tumour', 1, 0.5)")
        store.connection.execute("update outcomes set pfs_months = os_months + 1 where patient_id = 'P_0003'")
        checks = store.run_checks()
    assert checks["orphan_slide_features"]["slide_id"].to_list() == ["s_ghost"]
    assert checks["outcome_inconsistencies"]["patient_id"].to_list() == ["P_0003"]
