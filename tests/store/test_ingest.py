"""Ingest of per-slide folders: one transaction per slide, idempotent, half-written folders refused."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from immunodig.store import SlideDirError, Store

from .conftest import SPECS, slide_features, write_slide_dir


def _snapshot(store: Store) -> dict[str, list]:
    """Full content of the tables an ingest touches (order-independent)."""
    out = {}
    for table in ("slides", "runs", "slide_status", "slide_features", "patients"):
        df = store.query(f"select * from {table}")
        out[table] = sorted(map(repr, df.rows()))
    return out


@pytest.fixture
def three_slides(work_dir):
    return [
        write_slide_dir(work_dir, "s_000000000000000a", "P_a", slide_features(2.0, 1.0, 0.5, 100.0, 1)),
        write_slide_dir(work_dir, "s_000000000000000b", "P_a", slide_features(6.0, 3.0, 0.2, 300.0, 4)),
        write_slide_dir(work_dir, "s_000000000000000c", "P_b", slide_features(1.0, 0.0, float("nan"), float("nan"), 0)),
    ]


def test_ingest_writes_every_table(store_path, three_slides):
    with Store.open(store_path) as store:
        results = [store.ingest_slide_dir(d) for d in three_slides]
        assert [r.status for r in results] == ["ingested"] * 3
        assert [r.n_features for r in results] == [5, 5, 5]
        counts = store.counts()
        assert counts["slides"] == 3 and counts["slide_features"] == 15
        assert counts["runs"] == 1 and counts["slide_status"] == 3 and counts["patients"] == 2
        props = json.loads(store.query("select properties_json from slides limit 1").item())
        assert "aperio.Barcode" not in props and props["openslide.mpp-x"] == "0.5"
        # NaN (undefined) is stored as null so aggregates skip it
        nulls = store.query("select count(*) from slide_features where value is null").item()
        assert nulls == 2


def test_reingest_same_run_is_a_no_op(store_path, three_slides):
    with Store.open(store_path) as store:
        for d in three_slides:
            store.ingest_slide_dir(d)
        before = _snapshot(store)
        again = [store.ingest_slide_dir(d) for d in three_slides]
        assert {r.status for r in again} == {"unchanged"}
        assert _snapshot(store) == before


def test_rewritten_folder_of_same_run_replaces_without_duplicates(store_path, work_dir):
    with Store.open(store_path) as store:
        store.ingest_slide_dir(write_slide_dir(work_dir, "s_000000000000000a", "P_a",
                                               {"prop_TUM": 0.1, "tls_count": 2}))
        folder = write_slide_dir(work_dir, "s_000000000000000a", "P_a", {"prop_TUM": 0.3},
                                 finished_at="2024-05-02T10:00:00+00:00")
        assert store.ingest_slide_dir(folder).status == "ingested"
        rows = store.query("select feature, value from slide_features").rows()
        assert rows == [("prop_TUM", 0.3)]


def test_changed_run_adds_rows_and_becomes_current(store_path, work_dir):
    with Store.open(store_path) as store:
        store.ingest_slide_dir(write_slide_dir(work_dir, "s_000000000000000a", "P_a", {"prop_TUM": 0.1}))
        store.ingest_slide_dir(write_slide_dir(
            work_dir, "s_000000000000000a", "P_a", {"prop_TUM": 0.7}, run_id="r_00000000000000bb",
            finished_at="2024-06-01T10:00:00+00:00", config_hash="e" * 64))
        assert store.counts()["slide_features"] == 2
        assert store.counts()["runs"] == 2
        current = store.query("select run_id, value from slide_features_current").rows()
        assert current == [("r_00000000000000bb", 0.7)]


def test_later_failure_keeps_last_successful_features_current(store_path, work_dir):
    with Store.open(store_path) as store:
        store.ingest_slide_dir(write_slide_dir(work_dir, "s_000000000000000a", "P_a", {"prop_TUM": 0.1}))
        store.record_failure(run_id="r_00000000000000bb", reason="corrupt", message="tile read failed",
                             slide_id="s_000000000000000a")
        assert store.query("select value from slide_features_current").item() == 0.1
        statuses = store.query("select run_id, status, reason from slide_status order by run_id").rows()
        assert statuses == [("r_00000000000000aa", "done", None), ("r_00000000000000bb", "failed", "corrupt")]


def test_failure_json_is_recorded_and_superseded_by_success(store_path, work_dir):
    folder = work_dir / "failed"
    folder.mkdir(parents=True)
    (folder / "failure.json").write_text(json.dumps({
        "path": "/data/slides/s_000000000000000a.svs", "slide_id": None, "reason": "not_found",
        "message": "file not found", "run_id": "r_00000000000000aa"}))
    with Store.open(store_path) as store:
        result = store.ingest_slide_dir(folder)
        assert result.status == "failed"
        assert store.query("select slide_key, reason from slide_status").rows() == [
            ("/data/slides/s_000000000000000a.svs", "not_found")]
        store.ingest_slide_dir(write_slide_dir(work_dir, "s_000000000000000a", "P_a", {"prop_TUM": 0.1}))
        assert store.query("select slide_key, status from slide_status").rows() == [("s_000000000000000a", "done")]


def test_missing_manifest_is_refused_and_store_unchanged(store_path, work_dir, three_slides):
    unfinished = write_slide_dir(work_dir, "s_00000000000000ff", "P_c", {"prop_TUM": 0.1}, manifest=False)
    with Store.open(store_path) as store:
        store.ingest_slide_dir(three_slides[0])
        before = _snapshot(store)
        with pytest.raises(SlideDirError, match="no manifest.json"):
            store.ingest_slide_dir(unfinished)
        assert _snapshot(store) == before


def test_truncated_parquet_is_refused_and_store_unchanged(store_path, three_slides):
    folder = three_slides[1]
    data = (folder / "features.parquet").read_bytes()
    (folder / "features.parquet").write_bytes(data[: len(data) // 2])
    with Store.open(store_path) as store:
        store.ingest_slide_dir(three_slides[0])
        before = _snapshot(store)
        with pytest.raises(SlideDirError, match="SHA-256 differs"):
            store.ingest_slide_dir(folder)
        # even when the manifest agrees with the truncated file, the Parquet itself is refused
        manifest = json.loads((folder / "manifest.json").read_text())
        import hashlib
        manifest["files"]["features.parquet"] = hashlib.sha256((folder / "features.parquet").read_bytes()).hexdigest()
        (folder / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(SlideDirError, match="unreadable Parquet"):
            store.ingest_slide_dir(folder)
        assert _snapshot(store) == before


def test_truncated_manifest_and_bad_features_are_refused(store_path, work_dir):
    folder = write_slide_dir(work_dir, "s_000000000000000a", "P_a", {"prop_TUM": 0.1})
    text = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(text[:40])
    with Store.open(store_path) as store:
        with pytest.raises(SlideDirError, match="not valid JSON"):
            store.ingest_slide_dir(folder)
        bad = write_slide_dir(work_dir, "s_000000000000000b", "P_a", {"prop_TUM": 0.1})
        pq.write_table(pa.table({"feature": ["x; drop table slides"], "value": [1.0],
                                 "feature_version": pa.array([1], pa.int32())}), bad / "features.parquet")
        manifest = json.loads((bad / "manifest.json").read_text())
        import hashlib
        manifest["files"]["features.parquet"] = hashlib.sha256((bad / "features.parquet").read_bytes()).hexdigest()
        (bad / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(SlideDirError, match="invalid feature names"):
            store.ingest_slide_dir(bad)
        assert store.counts()["slides"] == 0


def test_same_run_id_with_other_config_is_refused(store_path, work_dir):
    with Store.open(store_path) as store:
        store.ingest_slide_dir(write_slide_dir(work_dir, "s_000000000000000a", "P_a", {"prop_TUM": 0.1}))
        other = write_slide_dir(work_dir, "s_000000000000000b", "P_a", {"prop_TUM": 0.1}, config_hash="f" * 64)
        with pytest.raises(SlideDirError, match="different config_hash"):
            store.ingest_slide_dir(other)
        assert store.counts()["slides"] == 1


def test_patient_aggregation_matches_independent_computation(store_path, three_slides, work_dir):
    # a CD3 slide of P_a must not enter the H&E aggregation
    cd3 = write_slide_dir(work_dir, "s_00000000000000cd", "P_a",
                          {**slide_features(50.0, 50.0, 1.0, 9999.0, 99), "cd3_density_tumour_per_mm2": 500.0},
                          stain="CD3")
    with Store.open(store_path) as store:
        store.sync_feature_catalog(SPECS)
        for d in [*three_slides, cd3]:
            store.ingest_slide_dir(d)
        long = {(p, f): (v, n) for p, f, v, n in store.query(
            "select patient_id, feature, value, n_slides from patient_features_long").rows()}
        wide = store.query("select * from patient_dataset order by patient_id")
        slides_wide = store.query("select * from slide_features_wide order by slide_id")
    # P_a: slides (area 2, tumour 1, prop .5, til 100, tls 1) and (6, 3, .2, 300, 4)
    assert long[("P_a", "area_tissue_mm2")] == (8.0, 2)
    assert long[("P_a", "tls_count")] == (4.0, 2)
    # IHC-stage features come from the IHC slide only
    assert long[("P_a", "cd3_density_tumour_per_mm2")] == (500.0, 1)
    assert math.isclose(long[("P_a", "prop_TUM")][0], (0.5 * 2 + 0.2 * 6) / 8)
    assert math.isclose(long[("P_a", "til_density_tumour_per_mm2")][0], (100 * 1 + 300 * 3) / 4)
    # P_b: prop/til undefined (NaN) and tumour area 0 -> undefined, no contributing slide
    assert long[("P_b", "til_density_tumour_per_mm2")] == (None, 0)
    assert long[("P_b", "prop_TUM")] == (None, 0)
    assert wide["patient_id"].to_list() == ["P_a", "P_b"]
    assert wide["n_he_slides"].to_list() == [2, 1]
    assert math.isclose(wide["til_density_tumour_per_mm2"][0], 250.0)
    assert slides_wide.height == 4 and slides_wide["tls_count"].to_list() == [1, 4, 0, 99]


def test_catalog_sync_is_idempotent_and_keeps_old_versions(store_path):
    from dataclasses import replace
    with Store.open(store_path) as store:
        store.sync_feature_catalog(SPECS)
        store.sync_feature_catalog(SPECS)
        assert store.counts()["feature_catalog"] == len(SPECS)
        store.sync_feature_catalog([replace(SPECS[2], version=2, description="New definition.")])
        rows = store.query("select version from feature_catalog where name = 'prop_TUM' order by 1").rows()
        assert rows == [(1,), (2,)]


def test_real_feature_catalog_syncs(store_path):
    from immunodig.features.catalog import catalog
    try:
        specs = list(catalog().values())
    except ImportError as exc:  # declaring modules of other stages may not exist yet
        pytest.skip(f"feature declarations not importable yet: {exc}")
    with Store.open(store_path) as store:
        assert store.sync_feature_catalog(specs) == len(specs)
        columns = store.query("select * from slide_features_wide").columns
    assert {s.name for s in specs} <= set(columns)
