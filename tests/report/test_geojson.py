"""GeoJSON export re-read: structure, QuPath keys, no NaN, coordinates back to the tables."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from immunodig.report.geojson import CELL_COLOURS, export_slide_geojson, rgb_list
from immunodig.vocab import CELL_CLASSES, KATHER_COLOURS
from tests.report.builders import write_slide_folder


def _reject(name):
    raise ValueError(f"non-standard JSON constant {name}")


@pytest.fixture
def folder(tmp_path, slide_file):
    return write_slide_folder(tmp_path / "work", "s_00000000000000ff", "P001", slide_file,
                              {"prop_tumour": 0.4}, seed=5)


def _load(path):
    return json.loads(path.read_text(), parse_constant=_reject)


def test_cell_colours_cover_the_vocabulary():
    assert set(CELL_COLOURS) == set(CELL_CLASSES)
    assert rgb_list("#1f3fbf") == [31, 63, 191]


def test_export_round_trip(folder, tmp_path):
    out = tmp_path / "slide.geojson"
    counts = export_slide_geojson(folder, out)
    data = _load(out)
    tiles = pl.read_parquet(folder / "tiles.parquet")
    nuclei = pl.read_parquet(folder / "nuclei.parquet")
    assert data["type"] == "FeatureCollection"
    feats = data["features"]
    kinds = [f["properties"]["objectType"] for f in feats]
    assert set(kinds) == {"tile", "annotation", "detection"}
    assert counts == {"tiles": tiles.height, "annotations": kinds.count("annotation"),
                      "detections": nuclei.height}
    assert kinds.count("tile") == tiles.height and kinds.count("detection") == nuclei.height
    for f in feats:
        m = f["properties"]["measurements"]
        assert all(isinstance(v, (int, float)) and np.isfinite(v) for v in m.values())
        cls = f["properties"].get("classification")
        if cls is not None:
            assert isinstance(cls["name"], str) and len(cls["color"]) == 3
            assert all(isinstance(c, int) and 0 <= c <= 255 for c in cls["color"])

    tile_feats = [f for f in feats if f["properties"]["objectType"] == "tile"]
    for f, row in zip(tile_feats, tiles.iter_rows(named=True)):
        ring = np.array(f["geometry"]["coordinates"][0])
        assert f["geometry"]["type"] == "Polygon" and np.allclose(ring[0], ring[-1])
        x, y, w, h = row["x_px"], row["y_px"], row["w_px"], row["h_px"]
        assert ring[:, 0].min() == x and ring[:, 0].max() == x + w
        assert ring[:, 1].min() == y and ring[:, 1].max() == y + h
        name = f["properties"]["classification"]["name"]
        if row["qc_pass"]:
            assert name == row["pred_class"]
            assert f["properties"]["classification"]["color"] == rgb_list(KATHER_COLOURS[name])
            assert f["properties"]["measurements"]["prob_TUM"] == pytest.approx(row["prob_TUM"])
        else:
            assert name == "QC excluded" and "prob_TUM" not in f["properties"]["measurements"]

    det = [f for f in feats if f["properties"]["objectType"] == "detection"]
    for f, row in zip(det, nuclei.iter_rows(named=True)):
        ring = np.array(f["geometry"]["coordinates"][0])[:-1]
        assert ring.mean(axis=0) == pytest.approx([row["x_px"], row["y_px"]], abs=1e-6)
        radius_um = np.hypot(*(ring[0] - ring.mean(axis=0))) * 0.5
        assert radius_um == pytest.approx(np.sqrt(row["area_um2"] / np.pi), rel=1e-6)
        assert f["properties"]["classification"]["name"] == row["cell_class"]
    # The first nucleus has an undefined texture value: left out, never NaN.
    assert "texture_contrast" not in det[0]["properties"]["measurements"]
    assert "texture_contrast" in det[1]["properties"]["measurements"]


def test_points_and_tiles_only(folder, tmp_path):
    out = tmp_path / "points.geojson"
    export_slide_geojson(folder, out, tiles=False, annotations=False, nucleus_shape="point")
    feats = _load(out)["features"]
    nuclei = pl.read_parquet(folder / "nuclei.parquet")
    assert all(f["geometry"]["type"] == "Point" for f in feats)
    xy = np.array([f["geometry"]["coordinates"] for f in feats])
    assert np.allclose(xy, nuclei.select("x_px", "y_px").to_numpy())
