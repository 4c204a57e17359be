"""The folder a reader of docs/ works in: every file the documented commands name, made small.

``cohort.duckdb`` (with ``cohort_slides/``) holds 24 patients with clinical data, one H&E slide
each (two for a few; the first is ``s_0123456789abcdef``, the id the docs use) and three CD3
slides registered onto their patient's H&E slide; beside it the tables, tiles and query files
the commands read. ``docs``, ``scripts`` and ``benchmarks`` link to the repository and
``../shared`` to the shared data, so relative paths resolve as in a checkout.
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pandas as pd

from tests.cli.doc_commands import REPO

#: Patients of the documentation store (``P_0001`` is the patient the docs' examples name).
PATIENTS = [f"P_{i:04d}" for i in range(1, 25)]
#: The slide id of the docs' examples (``show s_0123456789abcdef ...``).
DOC_SLIDE = "s_0123456789abcdef"
#: Features written for the H&E slides (names of the real catalogue).
HE_FEATURES = ("area_tissue_mm2", "area_tumour_mm2", "prop_tumour", "prop_stroma", "tls_count",
               "til_density_intraepithelial_per_mm2", "til_density_tumour_region_per_mm2",
               "tumour_bud_count")
CD3_FEATURES = ("cd3_density_tumour_region_per_mm2", "cd3_density_margin_per_mm2")


def he_slide_ids() -> list[tuple[str, str]]:
    """``(slide_id, patient_id)`` of the H&E slides: one per patient, a second for every fifth."""
    ids = [(DOC_SLIDE if i == 0 else f"s_{i:016x}", pid) for i, pid in enumerate(PATIENTS)]
    ids += [(f"s_{0xbb00 + i:016x}", pid) for i, pid in enumerate(PATIENTS) if i % 5 == 4]
    return ids


def _clinical(path: Path) -> pd.DataFrame:
    from immunodig.synthetic.clinical import clinical_table, cohort_morphology

    clinical, _ = clinical_table(cohort_morphology(len(PATIENTS), 5), 5, ids=PATIENTS)
    df = clinical.to_pandas()
    df.to_csv(path, index=False)
    return df


def _store(root: Path, slide_path: Path, rng: np.random.Generator) -> Path:
    from immunodig.clinical import import_clinical
    from immunodig.features.catalog import catalog
    from immunodig.store import Store
    from tests.report.builders import HE_LAYOUT, RUN_ID, write_ihc_folder, write_slide_folder

    store = root / "cohort.duckdb"
    work = root / "cohort_slides"
    specs = catalog()
    with Store.open(store) as st:
        st.sync_feature_catalog([specs[f] for f in (*HE_FEATURES, *CD3_FEATURES)])
        st.record_run(run_id=RUN_ID, code_version="0.1.0", config={"target_mpp": 0.5},
                      config_hash="c" * 64, model_hashes={"tissue": "d" * 64})
        for k, (slide_id, pid) in enumerate(he_slide_ids()):
            feats = {"area_tissue_mm2": float(rng.uniform(0.6, 0.9)), "area_tumour_mm2": float(rng.uniform(0.1, 0.3)),
                     "prop_tumour": float(rng.uniform(0.2, 0.6)), "prop_stroma": float(rng.uniform(0.1, 0.4)),
                     "tls_count": float(rng.poisson(1.5)), "tumour_bud_count": float(rng.poisson(4)),
                     "til_density_intraepithelial_per_mm2": float(rng.lognormal(4.5, 0.6)),
                     "til_density_tumour_region_per_mm2": float(rng.lognormal(5.0, 0.6))}
            flags = {"nuclei_density_low": "nuclei 150 per mm² (< 500)"} if k == 2 else {}
            st.ingest_slide_dir(write_slide_folder(work, slide_id, pid, slide_path, feats, seed=k, flags=flags,
                                                   classes=HE_LAYOUT, config={"margin_um": 112.0}))
        for i in (1, 2, 3):
            he_id, pid = he_slide_ids()[i]
            st.ingest_slide_dir(write_ihc_folder(
                work, f"s_{0xcd30 + i:016x}", pid, slide_path, he_id, seed=50 + i, flags={},
                features={"area_tissue_mm2": 0.5, CD3_FEATURES[0]: float(rng.uniform(200, 600)),
                          CD3_FEATURES[1]: float(rng.uniform(100, 400))}))
        st.record_failure(run_id=RUN_ID, reason="corrupt", message="tile read failed",
                          path=str(root / "slides" / "broken.svs"))
        st.finish_run(RUN_ID, "partial")
    import_clinical(root / "clinical.csv", store)
    return store


def _tables(root: Path, clinical: pd.DataFrame, rng: np.random.Generator) -> None:
    """The modelling, genomic, multiplex and spreadsheet inputs the docs name."""
    raw = clinical.rename(columns={"patient_id": "ipp"})
    raw["ipp"] = [f"H{900000 + i}" for i in range(len(raw))]
    raw.to_excel(root / "export.xlsx", index=False)
    pd.DataFrame({"patient_id": PATIENTS, "TMB (mut/Mb)": rng.uniform(5, 80, len(PATIENTS)),
                  "KRAS mutated": rng.choice(["wt", "mut"], len(PATIENTS))}).to_csv(root / "genomic.csv", index=False)
    pd.DataFrame({"patient_id": PATIENTS * 2, "marker": ["CD8"] * len(PATIENTS) + ["CD3"] * len(PATIENTS),
                  "compartment": "tumour", "density_per_mm2": rng.uniform(10, 900, 2 * len(PATIENTS))}
                 ).to_parquet(root / "densities.parquet")
    n = 60
    til, age = rng.lognormal(5, 0.7, n), rng.normal(65, 10, n).round()
    risk = -0.8 * (np.log(til) - 5) + 0.02 * (age - 65)
    base = {"patient_id": [f"Q{i:03d}" for i in range(n)], "age": age, "ecog": rng.integers(0, 3, n),
            "til": til, "stroma": rng.uniform(0.1, 0.6, n)}
    pd.DataFrame({**base, "resistant": (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(int)}
                 ).to_csv(root / "matrix.csv", index=False)
    time = rng.exponential(12 * np.exp(-risk))
    pd.DataFrame({**base, "pfs_months": np.minimum(time, 24).round(2), "pfs_event": (time < 24).astype(int)}
                 ).to_parquet(root / "matrix.parquet")
    for name, m, seed in (("A.csv", 90, 1), ("B.csv", 60, 2)):
        r = np.random.default_rng(seed)
        rx = r.choice(["Obs", "Lev", "Lev+5FU"], m)
        t = r.exponential(20 * np.exp(0.5 * (rx == "Lev+5FU")), m)
        pd.DataFrame({"id": np.arange(1, m + 1), "time": np.minimum(t, 36).round(2),
                      "status": (t < 36).astype(int), "rx": rx, "age": r.normal(60, 10, m).round(),
                      "sex": r.integers(0, 2, m), "til": r.lognormal(5, 0.5, m),
                      "area": r.uniform(0.5, 3, m)}).to_csv(root / name, index=False)
    (root / "my_query.sql").write_text("-- slides per stain\nselect stain, count(*) as n from slides group by stain\n")


def _tiles(root: Path, rng: np.random.Generator) -> None:
    """``TRAIN_DIR`` / ``DIR`` of tissue tiles: one folder per Kather class, four 224 px tiles each."""
    from PIL import Image

    from immunodig.synthetic.render import render_class_tile
    from immunodig.vocab import KATHER_CLASSES

    for cls in KATHER_CLASSES:
        (root / "tiles" / cls).mkdir(parents=True)
        for k in range(4):
            Image.fromarray(render_class_tile(cls, rng=rng)).save(root / "tiles" / cls / f"{cls}_{k}.png")


def _links(root: Path) -> None:
    for name in ("docs", "scripts", "benchmarks", "cli.py"):
        (root / name).symlink_to(REPO / name)
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (root.parent / "shared").symlink_to(shared)


def python_shim(bin_dir: Path, python: str) -> Path:
    """A ``python`` on PATH that is the test's interpreter (the docs say ``python ...``)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "python"
    shim.write_text(f'#!/bin/sh\nexec "{python}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def make_workspace(root: Path) -> Path:
    """Build the documentation workspace in ``root / "repo"`` (``../shared`` beside it); returns it."""
    from immunodig.synthetic.slide import make_slide

    ws = root / "repo"
    ws.mkdir(parents=True)
    rng = np.random.default_rng(17)
    _links(ws)
    (ws / "slides").mkdir()
    make_slide(ws / "slides" / "he.tiff", seed=3, slide_mm=1.0)
    clinical = _clinical(ws / "clinical.csv")
    store = _store(ws, Path("slides") / "he.tiff", rng)
    _tables(ws, clinical, rng)
    from immunodig.clinical import import_genomic, import_multiplex

    import_genomic(ws / "genomic.csv", store)
    import_multiplex(ws / "densities.parquet", store)
    _tiles(ws, rng)
    return ws
