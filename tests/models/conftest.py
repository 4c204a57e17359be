"""A small store with the contract relations, built through immunodig.store.Store."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.features.catalog import FeatureSpec

SPECS = (
    FeatureSpec("area_tissue_mm2", "mm2", "Tissue area.", "tissue", ("mask",),
                patient_aggregation="sum", weight=None),
    FeatureSpec("prop_TUM", "fraction", "Tumour fraction.", "tissue", ("tiles",),
                weight="area_tissue_mm2"),
    FeatureSpec("til_density_tumour_per_mm2", "per_mm2", "TILs per mm2 tumour.", "nuclei",
                ("nuclei",), weight="area_tissue_mm2"),
    FeatureSpec("cd3_density_tumour_per_mm2", "per_mm2", "CD3+ per mm2 (IHC).", "ihc",
                ("nuclei",), weight="area_tissue_mm2"),
)
N_PATIENTS = 90
N_UNLABELLED = 6


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """90 patients, 1-3 H&E slides each; resistance driven by TIL density (planted)."""
    from immunodig.store import Store

    path = tmp_path_factory.mktemp("store") / "cohort.duckdb"
    rng = np.random.default_rng(0)
    with Store.open(path) as store:
        store.sync_feature_catalog(SPECS)
        with store.transaction() as con:
            con.execute("insert into runs (run_id, status) values ('r_0000000000000001', 'done')")
            for i in range(N_PATIENTS):
                pid = f"P{i:03d}"
                til = rng.lognormal(5, 0.8)
                lp = -0.8 - 1.8 * (np.log(til) - 5) / 0.8
                resistant = int(rng.random() < 1 / (1 + np.exp(-lp)))
                pfs = rng.exponential(6 if resistant else 24)
                con.execute("insert into patients (patient_id) values (?)", [pid])
                con.execute("insert into clinical values (?, ?, ?, ?, ?, ?, ?, ?, null)",
                            [pid, float(rng.integers(30, 85)), rng.choice(["F", "M"]),
                             rng.choice(["left", "right", "rectum"]), rng.choice(["wt", "mut"]),
                             "wt", int(rng.integers(0, 2)), int(rng.integers(0, 3))])
                con.execute("insert into treatments values (?, ?, ?, null)",
                            [pid, rng.choice(["anti-PD-1", "anti-PD-1+anti-CTLA-4"]), 1])
                label = None if i < N_UNLABELLED else resistant
                con.execute("insert into outcomes values (?, ?, ?, ?, ?, ?, ?, 'test', null)",
                            [pid, "PD" if resistant else "PR", pfs, int(rng.random() < 0.8),
                             pfs + 5, 0, label])
                con.execute("insert into genomic values (?, 'TMB', ?, null)",
                            [pid, float(rng.gamma(5, 10))])
                con.execute("insert into multiplex values (?, 'CD8', 'tumour', ?, null)",
                            [pid, float(rng.gamma(2, 100))])
                for k in range(int(rng.integers(1, 4))):
                    sid = f"s_{i:08d}{k:08d}"
                    feats = {"area_tissue_mm2": rng.uniform(20, 80),
                             "prop_TUM": rng.uniform(0.2, 0.7),
                             "til_density_tumour_per_mm2": til * rng.lognormal(0, 0.1)}
                    _add_slide(con, sid, pid, "HE", feats)
                _add_slide(con, f"s_{i:08d}99999999", pid, "CD3",
                           {"area_tissue_mm2": 30.0,
                            "cd3_density_tumour_per_mm2": rng.gamma(2, 50)})
    return path


def _add_slide(con, sid: str, pid: str, stain: str, feats: dict) -> None:
    con.execute("insert into slides (slide_id, patient_id, stain) values (?, ?, ?)",
                [sid, pid, stain])
    con.execute("insert into slide_status (slide_key, slide_id, run_id, status) "
                "values (?, ?, 'r_0000000000000001', 'done')", [sid, sid])
    for name, value in feats.items():
        con.execute("insert into slide_features values (?, 'r_0000000000000001', ?, 1, ?)",
                    [sid, name, float(value)])
