"""Fixtures for store tests: per-slide folders written exactly as docs/architecture.md specifies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from immunodig.features.catalog import FeatureSpec


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_slide_dir(
    work_dir: Path,
    slide_id: str,
    patient_id: str | None,
    features: dict[str, float],
    run_id: str = "r_00000000000000aa",
    stain: str = "HE",
    finished_at: str = "2024-05-01T10:00:00+00:00",
    config_hash: str = "c" * 64,
    manifest: bool = True,
) -> Path:
    """Write slide.json, features.parquet and (unless ``manifest=False``) manifest.json."""
    folder = work_dir / run_id / slide_id
    folder.mkdir(parents=True, exist_ok=True)
    slide = {
        "slide_id": slide_id, "path": f"/data/slides/{slide_id}.svs", "patient_id": patient_id,
        "stain": stain, "mpp_x": 0.5, "mpp_y": 0.5, "mpp_source": "metadata", "width_px": 8000,
        "height_px": 6000, "level_count": 3, "vendor": "generic-tiff",
        "checksum_sha256": hashlib.sha256(slide_id.encode()).hexdigest(),
        "properties": {"openslide.mpp-x": "0.5", "aperio.Barcode": "SHOULD-NOT-BE-STORED"},
    }
    (folder / "slide.json").write_text(json.dumps(slide))
    table = pa.table({
        "feature": pa.array(list(features), pa.string()),
        "value": pa.array(list(features.values()), pa.float64()),
        "feature_version": pa.array([1] * len(features), pa.int32()),
    })
    pq.write_table(table, folder / "features.parquet")
    if manifest:
        (folder / "manifest.json").write_text(json.dumps({
            "slide_id": slide_id, "run_id": run_id, "code_version": "0.1.0",
            "config": {"target_mpp": 0.5}, "config_hash": config_hash,
            "model_hashes": {"tissue": "d" * 64}, "started_at": "2024-05-01T09:59:00+00:00",
            "finished_at": finished_at,
            "files": {name: _sha(folder / name) for name in ("slide.json", "features.parquet")},
        }))
    return folder


#: A small catalogue in the shape of immunodig.features.catalog.FeatureSpec.
SPECS = (
    FeatureSpec("area_tissue_mm2", "mm2", "Tissue area.", "tissue", ("mask",),
                patient_aggregation="sum", weight=None),
    FeatureSpec("area_tumour_mm2", "mm2", "Tumour area.", "tissue", ("tiles",),
                patient_aggregation="sum", weight=None),
    FeatureSpec("prop_TUM", "fraction", "Tumour fraction of tissue.", "tissue", ("tiles",),
                weight="area_tissue_mm2"),
    FeatureSpec("til_density_tumour_per_mm2", "per_mm2", "Lymphocytes per mm2 of tumour.",
                "nuclei", ("nuclei",), weight="area_tumour_mm2"),
    FeatureSpec("tls_count", "count", "Tertiary lymphoid structures.", "structures", ("tiles",),
                patient_aggregation="max", weight=None),
    FeatureSpec("cd3_density_tumour_per_mm2", "per_mm2", "CD3+ cells per mm2 of tumour (IHC slide).",
                "ihc", ("nuclei",), weight="area_tumour_mm2"),
)


def slide_features(area: float, tumour: float, prop: float, til: float, tls: float) -> dict[str, float]:
    return {"area_tissue_mm2": area, "area_tumour_mm2": tumour, "prop_TUM": prop,
            "til_density_tumour_per_mm2": til, "tls_count": tls}


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"
