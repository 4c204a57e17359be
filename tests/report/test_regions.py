"""Compartment polygons: the tiles the features count, valid, in level-0 pixels; IHC exports."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import shapely
from shapely.geometry import Point, shape

from immunodig.config import BuildConfig
from immunodig.features.margin import compartments, margin_features
from immunodig.features.tilemap import TileMap
from immunodig.report.geojson import export_slide_geojson
from immunodig.report.overlays import IHC_OVERLAYS, write_slide_overlays
from immunodig.report.regions import slide_regions
from immunodig.report.slide_artefacts import load_slide_artefacts
from tests.report.builders import MPP, TILE_PX, write_ihc_folder, write_slide_folder

MARGIN_UM = 112.0


@pytest.fixture
def he_folder(tmp_path, slide_file):
    """An 8 x 8 tile slide: a 4 x 4 tumour block (rows/cols 2-5) in stroma; margin 112 µm."""
    folder = write_slide_folder(tmp_path / "work", "s_00000000000000a1", "P001", slide_file,
                                {"prop_tumour": 0.2}, seed=11)
    tiles = pl.read_parquet(folder / "tiles.parquet")
    r, c = tiles["y_px"] // TILE_PX, tiles["x_px"] // TILE_PX
    tum = (r >= 2) & (r <= 5) & (c >= 2) & (c <= 5)
    tiles = tiles.with_columns(
        pred_class=pl.when(~pl.col("qc_pass")).then(None)
        .when(tum).then(pl.lit("TUM")).otherwise(pl.lit("STR")))
    tiles.write_parquet(folder / "tiles.parquet")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["config"]["margin_um"] = MARGIN_UM
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_regions_are_the_feature_compartments(he_folder):
    art = load_slide_artefacts(he_folder)
    regions = {r.name: r for r in slide_regions(art)}
    assert set(regions) == {"tissue", "tumour region", "margin inner", "margin outer", "core", "bud"}
    cfg = BuildConfig(margin_um=MARGIN_UM)
    tmap = TileMap.from_tiles(art.tiles, cfg.tile_size_um)
    comp = compartments(tmap, cfg.margin_um)
    lym = art.nuclei.filter(pl.col("cell_class") == "lymphocyte").select("x_um", "y_um").to_numpy()
    feats = margin_features(tmap, comp, lym)
    m = {name: r.measurements for name, r in regions.items()}
    assert m["tumour region"]["tissue_area_mm2"] == pytest.approx(feats["area_tumour_region_mm2"])
    assert m["margin inner"]["tissue_area_mm2"] == pytest.approx(feats["area_margin_inner_mm2"])
    assert m["margin outer"]["tissue_area_mm2"] == pytest.approx(feats["area_margin_outer_mm2"])
    assert m["core"]["tissue_area_mm2"] == pytest.approx(feats["area_core_mm2"])
    assert m["core"]["til_density_per_mm2"] == pytest.approx(feats["til_density_core_per_mm2"])
    assert m["tumour region"]["tumour_edge_length_mm"] == pytest.approx(
        feats["tumour_edge_length_mm"])
    # Core: the 2 x 2 centre block (tiles 3-4); polygon area = tiles x tile area.
    core = regions["core"]
    assert core.geometry.is_valid and m["core"]["n_tiles"] == 4
    assert core.geometry.area == pytest.approx(4 * TILE_PX ** 2)
    assert m["core"]["area_um2"] == pytest.approx(4 * (TILE_PX * MPP) ** 2)
    for row in art.tiles.iter_rows(named=True):
        centre = Point(row["x_px"] + TILE_PX / 2, row["y_px"] + TILE_PX / 2)
        in_core = 3 <= row["x_px"] // TILE_PX <= 4 and 3 <= row["y_px"] // TILE_PX <= 4
        assert core.geometry.contains(centre) == (in_core and row["qc_pass"])


def test_geojson_annotations_and_ihc_detections(he_folder, tmp_path, slide_file):
    out = tmp_path / "he.geojson"
    counts = export_slide_geojson(he_folder, out, tiles=False, nuclei=False)
    feats = json.loads(out.read_text())["features"]
    n_buds = sum(f["properties"]["classification"]["name"] == "bud" for f in feats)
    assert n_buds > 0 and counts["annotations"] == len(feats) == 5 + n_buds
    for f in feats:
        props = f["properties"]
        assert props["objectType"] == "annotation"
        geom = shape(f["geometry"])
        assert geom.is_valid and geom.area > 0
        assert shapely.box(0, 0, 8 * TILE_PX, 8 * TILE_PX).contains(geom)
        assert props["measurements"]["area_um2"] == pytest.approx(geom.area * MPP ** 2, rel=1e-6)
    ihc = write_ihc_folder(tmp_path / "work", "s_00000000000000c3", "P001", slide_file,
                           "s_00000000000000a1", seed=4)
    out = tmp_path / "ihc.geojson"
    counts = export_slide_geojson(ihc, out, tiles=False, nucleus_shape="point")
    cells = pl.read_parquet(ihc / "ihc_cells.parquet")
    feats = json.loads(out.read_text())["features"]
    assert counts == {"tiles": 0, "annotations": 0, "detections": cells.height}
    assert {f["properties"]["classification"]["name"] for f in feats} == {"CD3 positive"}
    xy = np.array([f["geometry"]["coordinates"] for f in feats])
    assert np.allclose(xy, cells.select("x_um", "y_um").to_numpy() / MPP)
    assert feats[0]["properties"]["measurements"]["dab_od_mean"] == pytest.approx(
        cells["dab_od_mean"][0])


def test_ihc_overlays_draw_what_the_slide_has(he_folder, tmp_path, slide_file):
    ihc = write_ihc_folder(tmp_path / "work", "s_00000000000000c3", "P001", slide_file,
                           "s_00000000000000a1", seed=4)
    written = write_slide_overlays(ihc, out_dir=tmp_path / "png")
    assert set(written) == set(IHC_OVERLAYS)
    assert all(not isinstance(v, str) and v.is_file() for v in written.values()), written
    lonely = write_ihc_folder(tmp_path / "work2", "s_00000000000000c4", "P002", slide_file,
                              None, seed=5)
    written = write_slide_overlays(lonely, out_dir=tmp_path / "png2")
    assert "registration.json" in written["registration"]
    assert not isinstance(written["positive_density"], str)


def test_tls_annotations_are_the_counted_tls_candidates(he_folder):
    """A LYM block diagonal to the tumour becomes one TLS annotation: the same candidate, area and
    position (here distant: beyond the 112 µm margin) that the tls_* features count."""
    from immunodig.features.structures import structure_features

    tiles = pl.read_parquet(he_folder / "tiles.parquet")
    r, c = tiles["y_px"] // TILE_PX, tiles["x_px"] // TILE_PX
    lym = (r >= 6) & (r <= 7) & (c >= 6) & (c <= 7) & tiles["qc_pass"]
    tiles = tiles.with_columns(pred_class=pl.when(lym).then(pl.lit("LYM"))
                               .otherwise(pl.col("pred_class")))
    tiles.write_parquet(he_folder / "tiles.parquet")
    art = load_slide_artefacts(he_folder)
    tls = [r for r in slide_regions(art) if r.name == "TLS"]
    cfg = BuildConfig(margin_um=MARGIN_UM)
    tmap = TileMap.from_tiles(art.tiles, cfg.tile_size_um)
    feats = structure_features(tmap, compartments(tmap, cfg.margin_um), cfg)
    assert feats["tls_count"] == 1 and len(tls) == 1
    assert tls[0].geometry.is_valid and tls[0].measurements["position"] == "distant"
    assert feats["tls_peritumoural_count"] == feats["tls_intratumoural_count"] == 0
    assert tls[0].measurements["tissue_area_mm2"] == pytest.approx(feats["tls_area_mm2"])


def test_bud_annotations_are_the_counted_buds(he_folder):
    """Every counted tumour bud is one ``bud`` polygon (level-0 px) around its nuclei: as many as
    ``tumour_bud_count``, each in the margin's stroma, holding the centroids of its 1-4 nuclei."""
    from immunodig.features.slide_features import compute_slide_features

    art = load_slide_artefacts(he_folder)
    buds = [r for r in slide_regions(art) if r.name == "bud"]
    cfg = BuildConfig(margin_um=MARGIN_UM)
    feats = compute_slide_features(art.tiles, art.nuclei, 0.8, cfg)
    count = feats.filter(pl.col("feature") == "tumour_bud_count")["value"][0]
    assert len(buds) == count > 0
    margin = next(r for r in slide_regions(art) if r.name == "margin outer").geometry
    epi = art.nuclei.filter(pl.col("cell_class") == "epithelial")
    for bud in buds:
        m = bud.measurements
        assert bud.geometry.is_valid and 1 <= m["n_nuclei"] <= 4
        assert margin.buffer(1).contains(Point(m["x_um"] / MPP, m["y_um"] / MPP))
        inside = epi.filter(pl.Series([bud.geometry.contains(Point(x / MPP, y / MPP))
                                       for x, y in epi.select("x_um", "y_um").iter_rows()]))
        assert inside.height >= m["n_nuclei"]


def test_compartment_overlay_draws_tls_buds_and_model_structures(he_folder):
    """The ``show`` compartments picture has a legend entry per thing the features measure."""
    import matplotlib.pyplot as plt

    from immunodig.report.overlays import plot_compartments

    tiles = pl.read_parquet(he_folder / "tiles.parquet")
    r, c = tiles["y_px"] // TILE_PX, tiles["x_px"] // TILE_PX
    lym = (r >= 6) & (c >= 6) & tiles["qc_pass"]
    tiles.with_columns(pred_class=pl.when(lym).then(pl.lit("LYM")).otherwise(pl.col("pred_class"))
                       ).write_parquet(he_folder / "tiles.parquet")
    gland = shapely.box(500, 500, 700, 650)
    pl.DataFrame({"class": ["gland"], "geometry_wkb": [shapely.to_wkb(gland)]}).write_parquet(
        he_folder / "structures.parquet")
    art = load_slide_artefacts(he_folder)
    n_buds = sum(reg.name == "bud" for reg in slide_regions(art))
    fig, ax = plt.subplots()
    try:
        plot_compartments(art, None, ax=ax)
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
    finally:
        plt.close(fig)
    assert "TLS (1)" in labels and f"tumour buds ({n_buds})" in labels and n_buds > 0
    assert "gland (model, 1)" in labels
    assert any(lb.startswith("core (") for lb in labels) and "tumour region (outline)" in labels
