"""TIL features on hand-built tile and nucleus tables (exact expected values) and edge cases."""

import math

import polars as pl
import pytest

from immunodig.config import BuildConfig
from immunodig.features.catalog import catalog
from immunodig.features.til import ihc_features, til_features
from immunodig.vocab import KATHER_CLASSES

CFG = BuildConfig(target_mpp=0.5, tile_size_px=200, margin_um=100.0)  # 100 µm tiles, 0.01 mm² each

GRID = [
    ["STR", "ADI", "ADI", "TUM", "TUM"],
    ["ADI", "ADI", "STR", "TUM", "TUM"],
    ["LYM", "ADI", "STR", "STR", "NORM"],
]


def tiles_from(grid, tile_um=100.0):
    rows = []
    for r, line in enumerate(grid):
        for c, cls in enumerate(line):
            row = {"x_um": c * tile_um, "y_um": r * tile_um, "tissue_fraction": 1.0, "qc_pass": True, "pred_class": cls}
            row.update({f"prob_{k}": float(k == cls) for k in KATHER_CLASSES})
            rows.append(row)
    return pl.DataFrame(rows)


def nuclei_from(points):
    return pl.DataFrame(
        {
            "x_um": [p[0] for p in points],
            "y_um": [p[1] for p in points],
            "tissue_class": [None] * len(points),
            "cell_class": [p[2] for p in points],
        },
        schema={"x_um": pl.Float64, "y_um": pl.Float64, "tissue_class": pl.String, "cell_class": pl.String},
    )


LYM = "lymphocyte"
POINTS = (
    [(310, 10, LYM), (320, 20, LYM), (330, 30, LYM), (450, 150, LYM)]  # 4 in TUM tiles
    + [(250, 150, LYM), (260, 160, LYM)]  # 2 in STR (1,2), next to tumour
    + [(50, 50, LYM)]  # STR (0,0), 300 µm from tumour: not peritumoural
    + [(10 + 10 * i, 250, LYM) for i in range(5)]  # 5 in the LYM tile
    + [(410 + 10 * i, 10 + 10 * i, "epithelial") for i in range(4)]  # 4 tumour nuclei
    + [(350, 250, "fibroblast")]
)


def test_til_features_exact():
    out = til_features(tiles_from(GRID), nuclei_from(POINTS), CFG)
    assert out["til_density_intraepithelial_per_mm2"] == pytest.approx(4 / 0.04)
    assert out["til_density_stromal_per_mm2"] == pytest.approx(2 / 0.03)
    assert out["til_density_tumour_region_per_mm2"] == pytest.approx(4 / 0.04)
    assert out["til_fraction_tumour"] == pytest.approx(0.5)
    # k = 10 tiles: the 1 mm² window holds the whole 3 x 5 grid: 12 lymphocytes / 1 mm²
    assert out["til_hotspot_density_per_mm2"] == pytest.approx(12.0)
    assert set(out) <= set(catalog())


def test_hotspot_picks_densest_window():
    cfg = BuildConfig(target_mpp=0.5, tile_size_px=1000)  # 500 µm tiles: 2 x 2 tiles = 1 mm²
    grid = [["STR"] * 4 for _ in range(3)]
    pts = [(100, 100, LYM)] * 3 + [(1100, 1100, LYM)] * 4 + [(1600, 1100, LYM)] * 2
    out = til_features(tiles_from(grid, 500.0), nuclei_from(pts), cfg)
    assert out["til_hotspot_density_per_mm2"] == pytest.approx(6.0)


def test_no_tumour_gives_nan_and_no_lymphocytes_gives_zero():
    no_tum = [["STR", "LYM"], ["ADI", "STR"]]
    out = til_features(tiles_from(no_tum), nuclei_from([(50, 50, LYM)]), CFG)
    for k in ("intraepithelial", "stromal", "tumour_region"):
        assert math.isnan(out[f"til_density_{k}_per_mm2"])
    assert math.isnan(out["til_fraction_tumour"])
    out = til_features(tiles_from(GRID), nuclei_from([(410, 10, "epithelial")]), CFG)
    assert out["til_density_intraepithelial_per_mm2"] == 0.0
    assert out["til_density_stromal_per_mm2"] == 0.0
    assert out["til_fraction_tumour"] == 0.0
    assert out["til_hotspot_density_per_mm2"] == 0.0
    empty = til_features(tiles_from(GRID), nuclei_from([]), CFG)
    assert empty["til_density_tumour_region_per_mm2"] == 0.0 and math.isnan(empty["til_fraction_tumour"])


def test_ihc_features_same_compartments():
    cells = nuclei_from([(p[0], p[1], "x") for p in POINTS if p[2] == LYM]).select("x_um", "y_um")
    out = ihc_features(tiles_from(GRID), cells, CFG, "CD3")
    assert out["cd3_density_intraepithelial_per_mm2"] == pytest.approx(100.0)
    assert out["cd3_density_stromal_per_mm2"] == pytest.approx(2 / 0.03)
    assert "cd3_density_margin_per_mm2" in out and "cd3_fraction_tumour" not in out
    assert set(out) <= set(catalog())
