"""Hand-built report inputs: per-slide folders as docs/architecture.md specifies, and a store
with clinical data, build runs (one failed slide per reason) and stored model evaluations."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from immunodig.features.catalog import catalog
from immunodig.vocab import CELL_CLASSES, KATHER_CLASSES

RUN_ID = "r_00000000000000aa"
TILE_PX = 224
MPP = 0.5
SIDE_PX = 2000
MASK_MPP = 8.0
#: Features written for every slide (names of the real catalogue).
FEATURES = ("area_tissue_mm2", "area_tumour_mm2", "prop_tumour", "prop_stroma",
            "til_density_intraepithelial_per_mm2", "tls_count")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tiles(rng: np.random.Generator, side_px: int = SIDE_PX,
               classes: np.ndarray | None = None) -> pl.DataFrame:
    """A full tile grid: random classes, a few QC failures (blur, pen) with null classes.

    ``classes`` (Kather names, rows x columns of tiles) replaces the random classes; its QC
    failures then fall on stroma (STR) tiles only, so planted structures stay whole.
    """
    n = side_px // TILE_PX
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    k = len(rows)
    probs = rng.dirichlet(np.ones(len(KATHER_CLASSES)), k).astype(np.float32)
    pred = np.array(KATHER_CLASSES)[probs.argmax(1)].astype(object)
    candidates = np.arange(k)
    if classes is not None:
        pred = np.asarray(classes, dtype=object)[rows, cols]
        candidates = np.flatnonzero(pred == "STR")
    reason = np.array([None] * k, dtype=object)
    bad = rng.choice(candidates, 6, replace=False)
    reason[bad[:4]] = "blur"
    reason[bad[4:]] = "pen"
    qc_pass = np.array([r is None for r in reason])
    pred[~qc_pass] = None
    frame = {
        "x_px": (cols * TILE_PX).astype(np.int64), "y_px": (rows * TILE_PX).astype(np.int64),
        "w_px": np.full(k, TILE_PX, np.int64), "h_px": np.full(k, TILE_PX, np.int64),
        "x_um": cols * TILE_PX * MPP, "y_um": rows * TILE_PX * MPP,
        "tissue_fraction": rng.uniform(0.5, 1.0, k), "qc_blur": rng.uniform(10, 500, k),
        "qc_pen": reason == "pen", "qc_background": np.zeros(k, bool), "qc_pass": qc_pass,
        "qc_reason": list(reason),
    }
    for i, c in enumerate(KATHER_CLASSES):
        col = probs[:, i].astype(float)
        frame[f"prob_{c}"] = [None if not ok else float(v) for v, ok in zip(col, qc_pass)]
    frame["pred_class"] = list(pred)
    return pl.DataFrame(frame)


def make_nuclei(rng: np.random.Generator, n: int = 300, side_px: int = SIDE_PX) -> pl.DataFrame:
    """Random nuclei; the first has an undefined (NaN) texture value."""
    x = rng.uniform(0, side_px, n)
    y = rng.uniform(0, side_px, n)
    texture = rng.uniform(0, 1, n)
    texture[0] = np.nan
    return pl.DataFrame({
        "x_um": x * MPP, "y_um": y * MPP, "x_px": x, "y_px": y,
        "area_um2": rng.uniform(15, 60, n), "perimeter_um": rng.uniform(14, 30, n),
        "eccentricity": rng.uniform(0, 0.9, n), "solidity": rng.uniform(0.8, 1, n),
        "circularity": rng.uniform(0.6, 1, n), "h_od_mean": rng.uniform(0.2, 1, n),
        "e_od_mean": rng.uniform(0.1, 0.5, n), "texture_contrast": texture,
        "texture_homogeneity": rng.uniform(0, 1, n),
        "tissue_class": rng.choice(list(KATHER_CLASSES), n),
        "cell_class": rng.choice(list(CELL_CLASSES), n), "cell_prob": rng.uniform(0.5, 1, n),
    })


def write_slide_folder(work: Path, slide_id: str, patient_id: str | None, slide_path: Path,
                       features: dict[str, float], seed: int, stain: str = "HE",
                       nuclei: bool = True, flags: dict[str, str] | None = None,
                       measures: dict[str, float] | None = None, classes: np.ndarray | None = None,
                       config: dict | None = None) -> Path:
    """Write one complete per-slide folder (manifest last).

    ``flags`` adds a ``qc.json`` (with ``measures``, default tissue area and nuclei density);
    ``classes`` plants tile classes (:func:`make_tiles`); ``config`` adds build-config keys to the
    manifest (e.g. ``margin_um``).
    """
    rng = np.random.default_rng(seed)
    folder = work / slide_id
    folder.mkdir(parents=True, exist_ok=True)
    slide = {"slide_id": slide_id, "path": str(slide_path), "patient_id": patient_id,
             "stain": stain, "mpp_x": MPP, "mpp_y": MPP, "mpp_source": "metadata",
             "width_px": SIDE_PX, "height_px": SIDE_PX, "level_count": 2,
             "vendor": "generic-tiff", "checksum_sha256": hashlib.sha256(slide_id.encode()).hexdigest(),
             "properties": {}}
    (folder / "slide.json").write_text(json.dumps(slide))
    mask_px = int(SIDE_PX * MPP / MASK_MPP)
    yy, xx = np.mgrid[:mask_px, :mask_px]
    mask = ((xx - mask_px / 2) ** 2 + (yy - mask_px / 2) ** 2) < (0.4 * mask_px) ** 2
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "mask.png")
    make_tiles(rng, classes=classes).write_parquet(folder / "tiles.parquet")
    files = ["slide.json", "mask.png", "tiles.parquet", "features.parquet"]
    if nuclei:
        make_nuclei(rng).write_parquet(folder / "nuclei.parquet")
        files.append("nuclei.parquet")
    if flags is not None:
        (folder / "qc.json").write_text(json.dumps({
            "measures": measures or {"tissue_area_mm2": 0.8, "nuclei_per_mm2": 150.0}, "flags": flags}))
        files.append("qc.json")
    pl.DataFrame({"feature": list(features), "value": list(features.values()),
                  "feature_version": [1] * len(features)},
                 schema={"feature": pl.String, "value": pl.Float64,
                         "feature_version": pl.Int32}).write_parquet(folder / "features.parquet")
    (folder / "manifest.json").write_text(json.dumps({
        "slide_id": slide_id, "run_id": RUN_ID, "code_version": "0.1.0",
        "config": {"target_mpp": MPP, "tile_size_px": TILE_PX, "mask_mpp": MASK_MPP, **(config or {})},
        "config_hash": "c" * 64, "model_hashes": {"tissue": "d" * 64},
        "started_at": "2024-05-01T09:59:00+00:00", "finished_at": "2024-05-01T10:00:00+00:00",
        "files": {name: _sha(folder / name) for name in files}}))
    return folder


def build_store(root: Path, slide_path: Path, n_patients: int = 30, seed: int = 0,
                models: bool = True) -> Path:
    """A store with ``n_patients`` patients (one H&E slide each, the last without clinical data),
    two failed slides, clinical data and (``models``) stored evaluations and fits."""
    from immunodig.store import Store

    rng = np.random.default_rng(seed)
    store = root / "cohort.duckdb"
    work = root / "cohort_slides"
    specs = catalog()
    with Store.open(store) as st:
        st.sync_feature_catalog([specs[f] for f in FEATURES])
        st.record_run(run_id=RUN_ID, code_version="0.1.0", config={"target_mpp": MPP},
                      config_hash="c" * 64, model_hashes={"tissue": "d" * 64})
        resistant = rng.random(n_patients) < 0.35
        for i in range(n_patients):
            til = float(rng.lognormal(5.0 - 1.2 * resistant[i], 0.5))
            feats = {"area_tissue_mm2": 0.8, "area_tumour_mm2": 0.3,
                     "prop_tumour": float(rng.uniform(0.2, 0.6)),
                     "prop_stroma": float(rng.uniform(0.1, 0.4)),
                     "til_density_intraepithelial_per_mm2": til,
                     "tls_count": float(rng.poisson(2 - resistant[i]))}
            flags = {"nuclei_density_low": "nuclei 150 per mm² (< 500)"} if i == 3 else {}
            folder = write_slide_folder(work, f"s_{i:016x}", f"P{i:03d}", slide_path, feats,
                                        seed + i, nuclei=i % 5 != 4, flags=flags)
            st.ingest_slide_dir(folder)
        st.record_failure(run_id=RUN_ID, reason="not_found", message="missing file",
                          path="/data/gone.svs")
        st.record_failure(run_id=RUN_ID, reason="corrupt", message="unreadable",
                          path="/data/broken.svs")
        st.finish_run(RUN_ID, "partial")
        with st.transaction() as con:
            for i in range(n_patients - 1):
                pid = f"P{i:03d}"
                con.execute("insert into patients (patient_id) values ($p) on conflict do nothing",
                            {"p": pid})
                con.execute("insert into clinical (patient_id, age_years, sex, primary_side, "
                            "ras_status, braf_status, lynch, ecog) values ($p, $a, $s, $side, "
                            "'wt', $braf, $lynch, $ecog)",
                            {"p": pid, "a": float(rng.uniform(35, 80)),
                             "s": "F" if rng.random() < 0.5 else "M",
                             "side": ["left", "right", "rectum"][i % 3],
                             "braf": "mut" if rng.random() < 0.3 else "wt",
                             "lynch": int(rng.random() < 0.2), "ecog": int(rng.integers(0, 2))})
                con.execute("insert into treatments values ($p, 'anti-PD-1', 1, null)", {"p": pid})
                undetermined = i % 10 == 9
                pfs = float(rng.exponential(4 if resistant[i] else 20))
                con.execute("insert into outcomes (patient_id, best_response, pfs_months, "
                            "pfs_event, primary_resistance) values ($p, $br, $t, $e, $r)",
                            {"p": pid, "br": "NE" if undetermined else
                             ("PD" if resistant[i] else "PR"), "t": pfs,
                             "e": int(rng.random() < 0.8),
                             "r": None if undetermined else int(resistant[i])})
            con.execute("insert into patients (patient_id) values ($p) on conflict do nothing",
                        {"p": f"P{n_patients - 1:03d}"})
    if models:
        from immunodig.evaluation.workflow import evaluate_store, fit_store

        cv = {"n_splits": 3, "n_repeats": 2, "seed": 0, "n_boot": 50}
        evaluate_store(store, "resistance", "morphology", "logistic", **cv)
        evaluate_store(store, "resistance", "combined", "logistic", **cv)
        evaluate_store(store, "pfs", "morphology", "cox", **cv)
        fit_store(store, "pfs", "morphology", "cox", root / "cox.joblib")
        fit_store(store, "resistance", "morphology", "xgboost", root / "xgb.joblib")
    return store


def write_ihc_folder(work: Path, slide_id: str, patient_id: str | None, slide_path: Path,
                     reference_slide_id: str | None, seed: int, stain: str = "CD3",
                     n_cells: int = 200, features: dict[str, float] | None = None,
                     flags: dict[str, str] | None = None, overlap_dice: float = 0.83) -> Path:
    """An IHC slide folder as build-features writes it: QC-only tiles (no class), positive cells
    in the IHC frame and, with a reference H&E slide, ``registration.json`` (a 10° rotation
    with ``overlap_dice``); ``flags`` adds a ``qc.json`` with the IHC measures."""
    rng = np.random.default_rng(seed)
    measures = {"tissue_area_mm2": 0.5, "positive_cells_per_mm2": n_cells / 0.5}
    if reference_slide_id is not None:
        measures["registration_overlap_dice"] = overlap_dice
    folder = write_slide_folder(work, slide_id, patient_id, slide_path,
                                features or {"area_tissue_mm2": 0.5}, seed, stain=stain,
                                nuclei=False, flags=flags, measures=measures)
    tiles = pl.read_parquet(folder / "tiles.parquet")
    tiles.with_columns(pl.lit(None, dtype=pl.String).alias("pred_class"),
                       *[pl.lit(None, dtype=pl.Float64).alias(f"prob_{c}") for c in KATHER_CLASSES]
                       ).write_parquet(folder / "tiles.parquet")
    x = rng.uniform(0, SIDE_PX * MPP, n_cells)
    y = rng.uniform(0, SIDE_PX * MPP, n_cells)
    pl.DataFrame({"x_um": x, "y_um": y, "area_um2": rng.uniform(20, 80, n_cells),
                  "dab_od_mean": rng.uniform(0.05, 0.4, n_cells)}).write_parquet(
        folder / "ihc_cells.parquet")
    files = ["slide.json", "mask.png", "tiles.parquet", "features.parquet", "ihc_cells.parquet"]
    if flags is not None:
        files.append("qc.json")
    if reference_slide_id is not None:
        (folder / "registration.json").write_text(json.dumps({
            "reference_slide_id": reference_slide_id, "angle_deg": 10.0, "shift_um": [20.0, -10.0],
            "centre_um": [500.0, 500.0], "overlap_dice": overlap_dice, "mask_mpp": MASK_MPP}))
        files.append("registration.json")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {name: _sha(folder / name) for name in files}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


#: Tile classes of the H&E slides of :func:`build_he_cd3_store` (8 x 8 tiles of 112 µm): a 4 x 4
#: tumour block (core: its 2 x 2 centre with a 112 µm margin), a 2 x 2 lymphoid block (a TLS
#: candidate) in the corner, stroma elsewhere.
HE_LAYOUT = np.array([["TUM" if 2 <= r <= 5 and 2 <= c <= 5 else "LYM" if r >= 6 and c >= 6 else "STR"
                       for c in range(8)] for r in range(8)], dtype=object)
#: Invasive-margin half-width of the H&E + CD3 cohort (one tile).
COHORT_MARGIN_UM = 112.0


def he_slide_id(i: int) -> str:
    return f"s_{i:016x}"


def cd3_slide_id(i: int) -> str:
    return f"s_{0xcd30 + i:016x}"


def build_he_cd3_store(root: Path, slide_path: Path, n_patients: int = 4) -> Path:
    """A store of ``n_patients`` patients with one H&E slide (tumour, margin, core, a TLS, nuclei)
    and one CD3 slide each, as build-features leaves them (per-slide folders with QC).

    QC: the first H&E slide is flagged ``nuclei_density_low``; the CD3 slides register onto their
    patient's H&E slide, the second one poorly (``registration_poor``, Dice 0.55) and the third
    not at all (``ihc_unregistered``: no registration.json).
    """
    from immunodig.store import Store

    store = root / "cohort.duckdb"
    work = root / "cohort_slides"
    specs = catalog()
    cd3 = ("cd3_density_tumour_region_per_mm2", "cd3_density_margin_per_mm2")
    with Store.open(store) as st:
        st.sync_feature_catalog([specs[f] for f in (*FEATURES, "tumour_bud_count", *cd3)])
        st.record_run(run_id=RUN_ID, code_version="0.1.0", config={"target_mpp": MPP},
                      config_hash="c" * 64, model_hashes={"tissue": "d" * 64})
        for i in range(n_patients):
            pid = f"P{i:03d}"
            he = {"area_tissue_mm2": 0.8, "area_tumour_mm2": 0.2, "prop_tumour": 0.25, "prop_stroma": 0.6,
                  "til_density_intraepithelial_per_mm2": 80.0 + 40 * i, "tls_count": 1.0}
            flags = {"nuclei_density_low": "nuclei 150 per mm² (< 500)"} if i == 0 else {}
            st.ingest_slide_dir(write_slide_folder(
                work, he_slide_id(i), pid, slide_path, he, seed=20 + i, flags=flags,
                classes=HE_LAYOUT, config={"margin_um": COHORT_MARGIN_UM}))
            reference = None if i == 2 else he_slide_id(i)
            ihc_flags = ({"registration_poor": "tissue overlap Dice 0.55 (< 0.7)"} if i == 1 else
                         {"ihc_unregistered": "no H&E slide registered"} if reference is None else {})
            st.ingest_slide_dir(write_ihc_folder(
                work, cd3_slide_id(i), pid, slide_path, reference, seed=40 + i, n_cells=150 + 50 * i,
                features={"area_tissue_mm2": 0.5, cd3[0]: 300.0 + 50 * i, cd3[1]: 150.0 + 20 * i},
                flags=ihc_flags, overlap_dice=0.55 if i == 1 else 0.83))
        st.finish_run(RUN_ID, "done")
    return store
