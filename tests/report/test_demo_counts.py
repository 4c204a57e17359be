"""The demo's printed cohort counts and feature-family coverage, against the planted store."""

from __future__ import annotations

import pytest

from immunodig.demo import cohort_counts, feature_coverage
from tests.report.builders import RUN_ID, write_ihc_folder, write_slide_folder

#: (area_core_mm2, tls_count) of the four patients' H&E slides; CD3 slides for patients 1 and 2.
HE = [(0.05, 1.0), (0.0, 0.0), (0.12, 0.0), (0.03, 2.0)]
CD3 = (1, 2)


@pytest.fixture(scope="module")
def store(tmp_path_factory, slide_file):
    from immunodig.features.catalog import catalog
    from immunodig.store import Store

    root = tmp_path_factory.mktemp("demo_counts")
    path, work = root / "s.duckdb", root / "s_slides"
    specs = catalog()
    names = ("area_tissue_mm2", "area_core_mm2", "tls_count", "cd3_density_intraepithelial_per_mm2",
             "cd3_area_tumour_mm2")  # the density's area weight
    with Store.open(path) as st:
        st.sync_feature_catalog([specs[f] for f in names])
        st.record_run(run_id=RUN_ID, code_version="0.1.0", config={"target_mpp": 0.5},
                      config_hash="c" * 64, model_hashes={"tissue": "d" * 64})
        for i, (core, tls) in enumerate(HE):
            pid = f"P{i:03d}"
            st.ingest_slide_dir(write_slide_folder(
                work, f"s_{i:016x}", pid, slide_file,
                {"area_tissue_mm2": 0.8, "area_core_mm2": core, "tls_count": tls}, seed=i))
            if i in CD3:
                st.ingest_slide_dir(write_ihc_folder(
                    work, f"s_{100 + i:016x}", pid, slide_file, f"s_{i:016x}", seed=50 + i,
                    features={"area_tissue_mm2": 0.5, "cd3_density_intraepithelial_per_mm2": 90.0,
                              "cd3_area_tumour_mm2": 0.1}))
        st.finish_run(RUN_ID, "done")
        with st.transaction() as con:
            for i in range(len(HE)):
                resistant = int(i % 2 == 0)
                con.execute("insert into outcomes values (?, ?, ?, ?, ?, ?, ?, 'test', null)",
                            [f"P{i:03d}", "PD" if resistant else "PR", 3.0 + 10 * i,
                             int(i != 3), 20.0 + i, 0, resistant])
    return path


def test_cohort_counts_are_the_planted_ones(store):
    assert cohort_counts(store) == {"patients": 4, "he_slides": 4, "ihc_slides": 2,
                                    "resistant": 2, "pfs_events": 3}


def test_feature_coverage_is_the_share_of_planted_slides(store):
    got = feature_coverage(store)
    assert got["slides_with_core"] == pytest.approx(sum(c > 0 for c, _ in HE) / len(HE))
    assert got["slides_with_tls"] == pytest.approx(sum(t > 0 for _, t in HE) / len(HE))
    assert got["cd3_patients_with_density"] == pytest.approx(1.0)
