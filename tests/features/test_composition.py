"""Composition features on hand-drawn tile maps; expected values computed by hand."""

from __future__ import annotations

import math

import polars as pl
import pytest

from immunodig.config import BuildConfig
from immunodig.errors import ValidationError
from immunodig.features.slide_features import compute_slide_features

from .builders import make_tiles

CFG = BuildConfig()  # 0.5 µm/px x 224 px = 112 µm tiles
A = 0.112**2  # mm² per whole tile


def feats(tiles: pl.DataFrame, tissue_area_mm2: float = 1.0, cfg: BuildConfig = CFG) -> dict:
    df = compute_slide_features(tiles, None, tissue_area_mm2, cfg)
    assert df.schema == {"feature": pl.String, "value": pl.Float64, "feature_version": pl.Int32}
    assert df["feature"].n_unique() == df.height
    return dict(zip(df["feature"], df["value"]))


LAYOUT = [
    "TTTS",
    "TTSL",
    "ADxB",
]


def test_known_layout_exact():
    tiles = make_tiles(LAYOUT, tissue_fraction={(0, 0): 0.5}, prob_lym={(1, 1): 0.4})
    f = feats(tiles, tissue_area_mm2=0.15)
    tol = dict(rel=1e-6, abs=1e-12)
    assert f["area_tissue_mm2"] == pytest.approx(0.15)
    # TUM 4.5 tiles (one at half tissue), STR 2, LYM 1, ADI 1, DEB 1; BACK 1; QC-failed 1.
    assert f["area_tumour_mm2"] == pytest.approx(4.5 * A, **tol)
    assert f["area_stroma_mm2"] == pytest.approx(2 * A, **tol)
    assert f["area_lymphocytes_mm2"] == pytest.approx(A, **tol)
    assert f["area_background_mm2"] == pytest.approx(A, **tol)
    assert f["area_mucus_mm2"] == 0.0
    assert f["area_unclassified_mm2"] == pytest.approx(A, **tol)
    assert f["area_classified_mm2"] == pytest.approx(9.5 * A, **tol)
    assert f["prop_tumour"] == pytest.approx(4.5 / 9.5, **tol)
    assert f["prop_debris"] == pytest.approx(1 / 9.5, **tol)
    assert f["prop_muscle"] == 0.0
    stems = ["adipose", "debris", "lymphocytes", "mucus", "muscle", "normal_mucosa", "stroma",
             "tumour"]
    props = [f[f"prop_{s}"] for s in stems]
    assert len(props) == 8 and sum(props) == pytest.approx(1.0)
    assert f["tsr_stroma_fraction"] == pytest.approx(2 / 6.5, **tol)
    assert f["tumour_necrosis_fraction"] == pytest.approx(1 / 5.5, **tol)
    assert f["tumour_mucin_fraction"] == 0.0
    # LYM tile (p=1) and the TUM tile at (1,1) with p=0.4 >= 0.3; 10 tissue tiles.
    assert f["lym_rich_tile_fraction"] == pytest.approx(0.2)
    # ADI at (2,0) touches TUM (1,0) and (1,1): 2 of 5 tumour tiles.
    assert f["adipose_involvement_fraction"] == pytest.approx(2 / 5)
    assert f["muscle_involvement_fraction"] == 0.0


def test_lym_rich_threshold_is_configurable():
    tiles = make_tiles(LAYOUT, prob_lym={(1, 1): 0.4})
    f = feats(tiles, cfg=CFG.with_(extra={"lym_rich_min_prob": 0.5}))
    assert f["lym_rich_tile_fraction"] == pytest.approx(0.1)


def test_tile_size_from_config_and_offset_grid():
    cfg = BuildConfig(target_mpp=0.25, tile_size_px=256)  # 64 µm tiles
    tiles = make_tiles(["TS", "MT"], tile_um=64.0, origin=(7, 3))
    f = feats(tiles, cfg=cfg)
    assert f["area_tumour_mm2"] == pytest.approx(2 * 0.064**2)
    assert f["muscle_involvement_fraction"] == pytest.approx(1.0)


def test_no_tumour():
    f = feats(make_tiles(["SSL", "AAL"]))
    assert f["area_tumour_mm2"] == 0.0
    assert f["prop_tumour"] == 0.0
    assert f["tsr_stroma_fraction"] == 1.0
    for name in ("tumour_necrosis_fraction", "tumour_mucin_fraction",
                 "adipose_involvement_fraction", "muscle_involvement_fraction"):
        assert math.isnan(f[name]), name


def test_single_tile():
    f = feats(make_tiles(["T"]))
    assert f["prop_tumour"] == 1.0
    assert f["tsr_stroma_fraction"] == 0.0
    assert f["adipose_involvement_fraction"] == 0.0


@pytest.mark.parametrize("layout", [[], ["xx", "x."], ["BB"]])
def test_empty_or_unclassified(layout):
    f = feats(make_tiles(layout), tissue_area_mm2=0.0)
    assert f["area_classified_mm2"] == 0.0
    assert math.isnan(f["prop_tumour"])
    assert math.isnan(f["lym_rich_tile_fraction"])
    assert math.isnan(f["tsr_stroma_fraction"])


def test_all_null_pred_class_column():
    tiles = make_tiles(["xx"]).with_columns(pl.lit(None).alias("pred_class"))
    f = feats(tiles)
    assert f["area_unclassified_mm2"] == pytest.approx(2 * A)


def test_missing_column_is_named():
    with pytest.raises(ValidationError, match="pred_class"):
        compute_slide_features(make_tiles(["T"]).drop("pred_class"), None, 1.0, CFG)


def test_unknown_class_rejected():
    tiles = make_tiles(["T"]).with_columns(pl.lit("TUMOUR").alias("pred_class"))
    with pytest.raises(ValidationError, match="pred_class"):
        compute_slide_features(tiles, None, 1.0, CFG)


def test_every_feature_is_declared_with_version():
    from immunodig.features.catalog import catalog

    df = compute_slide_features(make_tiles(LAYOUT), None, 1.0, CFG)
    specs = catalog()
    for name, version in zip(df["feature"], df["feature_version"]):
        assert specs[name].version == version
