"""build-features --structure-model: structures.parquet, seg_* features in the store, QuPath export."""

from __future__ import annotations

import json

import polars as pl
import pytest

from immunodig import slide_folder as sf
from immunodig.config import BuildConfig
from immunodig.pipeline.build import build_features
from immunodig.store import query
from tests.structures.helpers import write_darkness_model


@pytest.mark.slow
def test_structure_stage_runs_in_the_build_and_exports(tmp_path):
    from immunodig.report.geojson import export_slide_geojson
    from immunodig.structures.geojson import read_geojson
    from immunodig.synthetic import make_cohort

    cohort = make_cohort(tmp_path / "cohort", n_patients=1, seed=3, slide_mm=1.0, cd3_fraction=0.0)
    model = write_darkness_model(tmp_path / "dark.pt", mpp=2.0)
    cfg = BuildConfig(nuclei_backend=None, structure_model=str(model))
    store = tmp_path / "s.duckdb"
    summary = build_features([cohort.slides_dir], store, cfg, manifest=cohort.manifest, workers=1,
                             show_progress=False)
    assert summary.ok
    folders = [p for p in (tmp_path / "s_slides").iterdir() if (p / sf.STRUCTURES_PARQUET).is_file()]
    assert folders
    folder = folders[0]
    table = pl.read_parquet(folder / sf.STRUCTURES_PARQUET)
    manifest = json.loads((folder / sf.MANIFEST_JSON).read_text())
    assert sf.STRUCTURES_PARQUET in manifest["files"] and "structures" in manifest["model_hashes"]
    stored = query(store, "select slide_id, value from slide_features where feature = 'seg_gland_count'")
    assert dict(zip(stored["slide_id"], stored["value"]))[folder.name] == float(len(table))
    counts = export_slide_geojson(folder, tmp_path / "out.geojson", tiles=False, nuclei=False, annotations=False)
    assert counts["annotations"] == len(table) + 1
    anns = read_geojson(tmp_path / "out.geojson", classes=["gland"])
    assert sum(a.is_roi for a in anns) == 1 and sum(a.is_structure for a in anns) == len(table)
