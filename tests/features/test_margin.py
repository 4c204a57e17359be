"""Invasive margin and tumour core on tile maps of known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunodig.config import BuildConfig
from immunodig.features.slide_features import compute_slide_features

from .builders import make_nuclei, make_tiles

CFG = BuildConfig()  # 112 µm tiles, margin 500 µm
T = 112.0
A = (T / 1000) ** 2


def feats(tiles, nuclei=None, cfg=CFG):
    df = compute_slide_features(tiles, nuclei, 1.0, cfg)
    return dict(zip(df["feature"], df["value"]))


def strip_layout() -> list[str]:
    """3 x 20 tiles: stroma columns 0-9, tumour 10-19; LYM at (1, 8) and enclosed at (1, 17)."""
    rows = ["S" * 10 + "T" * 10 for _ in range(3)]
    rows[1] = rows[1][:8] + "L" + rows[1][9:17] + "L" + rows[1][18:]
    return rows


def test_straight_edge_band_and_core():
    # Edge at x = 1120 µm. A tile is in the band when its centre is within 500 µm of it:
    # tumour columns 10-13 (centre 56..392 µm inside), stroma columns 6-9; core = columns 14-19.
    tiles = make_tiles(strip_layout())
    f = feats(tiles, None)
    assert f["area_tumour_region_mm2"] == pytest.approx(30 * A)
    assert f["area_margin_inner_mm2"] == pytest.approx(12 * A)
    assert f["area_margin_outer_mm2"] == pytest.approx(12 * A)
    assert f["area_margin_mm2"] == pytest.approx(24 * A)
    assert f["area_core_mm2"] == pytest.approx(18 * A)
    assert f["prop_lymphocytes_margin"] == pytest.approx(1 / 24)
    assert f["prop_stroma_margin"] == pytest.approx(11 / 24)
    assert f["prop_tumour_margin"] == pytest.approx(12 / 24)
    assert f["prop_lymphocytes_core"] == pytest.approx(1 / 18)
    assert f["prop_tumour_core"] == pytest.approx(17 / 18)
    assert "til_density_margin_per_mm2" not in f  # nuclei stage did not run
    # Margin width 300 µm: columns 10-12 and 7-9.
    g = feats(tiles, cfg=CFG.with_(margin_um=300.0))
    assert g["area_margin_mm2"] == pytest.approx(18 * A)
    assert g["area_core_mm2"] == pytest.approx(21 * A)


def test_til_density_by_compartment(til_stub):
    tiles = make_tiles(strip_layout())
    x = np.r_[np.full(5, 8.5 * T), np.full(3, 17.2 * T), np.full(2, 0.5 * T), 12.5 * T]
    y = np.r_[np.full(5, 1.5 * T), np.full(3, 0.7 * T), np.full(2, 0.5 * T), 0.5 * T]
    cls = ["lymphocyte"] * 10 + ["epithelial"]
    f = feats(tiles, make_nuclei(x, y, cls, tiles))
    assert f["til_density_margin_per_mm2"] == pytest.approx(5 / (24 * A))
    assert f["til_density_core_per_mm2"] == pytest.approx(3 / (18 * A))


def test_disk_matches_continuous_geometry():
    # Tumour disk of radius 2 mm in a 7.8 mm stroma field; the band is the annulus
    # R - m < d < R + m around the circle: area 4 pi R m; edge length 2 pi R.
    n, r_um = 70, 2000.0  # margin 500 µm (CFG)
    centre = n * T / 2
    yy, xx = np.mgrid[:n, :n]
    dist = np.hypot((xx + 0.5) * T - centre, (yy + 0.5) * T - centre)
    layout = ["".join("T" if d < r_um else "S" for d in row) for row in dist]
    f = feats(make_tiles(layout))
    assert f["area_tumour_region_mm2"] == pytest.approx(math.pi * 2.0**2, rel=0.03)
    assert f["area_margin_mm2"] == pytest.approx(4 * math.pi * 2.0 * 0.5, rel=0.05)
    assert f["area_core_mm2"] == pytest.approx(math.pi * 1.5**2, rel=0.06)
    assert f["tumour_edge_length_mm"] == pytest.approx(2 * math.pi * 2.0, rel=0.05)


def test_straight_edge_length():
    tiles = make_tiles(["SSSSTTTT"] * 40)
    f = feats(tiles)
    assert f["tumour_edge_length_mm"] == pytest.approx(40 * T / 1000, rel=0.07)


def test_tumour_facing_glass_is_not_an_edge():
    f = feats(make_tiles(["TTTT", "TTTT"]))
    assert f["area_margin_mm2"] == 0.0
    assert f["tumour_edge_length_mm"] == 0.0
    assert f["area_core_mm2"] == pytest.approx(8 * A)
    assert math.isnan(f["prop_tumour_margin"])
    assert f["prop_tumour_core"] == 1.0


@pytest.mark.parametrize("layout", [["SSLL"], [], ["T"], ["xB"]])
def test_no_tumour_edge_defined_values(layout):
    f = feats(make_tiles(layout))
    assert f["area_margin_mm2"] == 0.0
    assert f["tumour_edge_length_mm"] == 0.0
    assert math.isnan(f["prop_lymphocytes_margin"])
