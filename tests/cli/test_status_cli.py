"""``status``: full slide ids and file names on one line per slide; ``--failed`` lists only the
failed slides with their error message."""

from __future__ import annotations

import pytest

from tests.report.builders import RUN_ID, write_slide_folder


@pytest.fixture
def store(tmp_path):
    from immunodig.store import Store

    path = tmp_path / "cohort.duckdb"
    with Store.open(path) as st:
        st.record_run(run_id=RUN_ID, code_version="0.1.0", config={}, config_hash="c" * 64,
                      model_hashes={})
        for i, name in enumerate(("P001_HE.svs", "P002_HE.svs")):
            st.ingest_slide_dir(write_slide_folder(tmp_path / "cohort_slides", f"s_{i:016x}", f"P00{i + 1}",
                                                   tmp_path / "slides" / name, {"prop_tumour": 0.3}, seed=i,
                                                   nuclei=False))
        st.record_failure(run_id=RUN_ID, reason="corrupt", message="tile read failed at level 0",
                          path=str(tmp_path / "slides" / "P003_HE.svs"))
    return path


def test_status_shows_full_ids_and_file_names(cli, store):
    res = cli("status", "--store", store)
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    for i, name in enumerate(("P001_HE.svs", "P002_HE.svs")):
        row = next(ln for ln in lines if f"s_{i:016x}" in ln)  # the whole id on one line
        assert name in row and "done" in row and RUN_ID in row
    failed = next(ln for ln in lines if "P003_HE.svs" in ln)
    assert "failed" in failed and "corrupt" in failed
    assert "done: 2, failed: 1; flagged by QC: 0" in res.out


def test_status_failed_lists_only_failures_with_their_message(cli, store):
    res = cli("status", "--store", store, "--failed")
    assert res.code == 0, res.err
    assert "P003_HE.svs" in res.out and "tile read failed at level 0" in res.out
    assert "s_0000000000000000" not in res.out and "P001_HE.svs" not in res.out
    assert "done: 2, failed: 1" in res.out  # the totals still cover every slide
