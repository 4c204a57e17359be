"""Tertiary-lymphoid-structure candidates on a hand-drawn map."""

from __future__ import annotations

import math

import pytest

from immunodig.config import BuildConfig
from immunodig.features.slide_features import compute_slide_features

from .builders import make_tiles

CFG = BuildConfig()
T = 112.0
A = (T / 1000) ** 2


def feats(layout, cfg=CFG):
    df = compute_slide_features(make_tiles(layout), None, 1.0, cfg)
    return dict(zip(df["feature"], df["value"]))


def paint(grid: list[list[str]], cells, ch: str = "L") -> None:
    for r, c in cells:
        grid[r][c] = ch


def tls_layout() -> list[str]:
    """10 x 30 tiles, stroma columns 0-14, tumour 15-29 (edge at column 15), four LYM groups."""
    g = [list("S" * 15 + "T" * 15) for _ in range(10)]
    paint(g, [(4, 22), (4, 23), (5, 22), (5, 23)])  # intratumoural 2x2, 7.5 tiles deep: -840 µm
    paint(g, [(1, 12), (2, 12), (3, 12)])  # peritumoural 1x3, 2.5 tiles out: +280 µm
    paint(g, [(8, 13)])  # single tile: below the size threshold
    paint(g, [(6, 1), (6, 2), (7, 1), (7, 2)])  # distant 2x2, 12.5 tiles out: +1400 µm
    return ["".join(row) for row in g]


def test_known_candidates():
    f = feats(tls_layout())
    assert f["tls_count"] == 3
    assert f["tls_intratumoural_count"] == 1
    assert f["tls_peritumoural_count"] == 1
    assert f["tls_density_tumour_per_mm2"] == pytest.approx(2 / (150 * A))
    assert f["tls_intratumoural_fraction"] == pytest.approx(0.5)
    assert f["tls_area_mm2"] == pytest.approx(11 * A)
    assert f["tls_area_mean_mm2"] == pytest.approx(11 * A / 3)
    assert f["tls_area_max_mm2"] == pytest.approx(4 * A)
    assert f["tls_edge_distance_median_um"] == pytest.approx(280.0)


def test_size_threshold_configurable():
    f = feats(tls_layout(), cfg=CFG.with_(extra={"tls_min_area_mm2": 0.01}))
    assert f["tls_count"] == 4
    assert f["tls_peritumoural_count"] == 2  # the single tile is 1.5 tiles from the edge


def test_diagonal_tiles_connect():
    g = [list("S" * 12) for _ in range(6)]
    paint(g, [(1, 1), (2, 2), (3, 3)])
    f = feats(["".join(r) for r in g])
    assert f["tls_count"] == 1
    assert f["tls_area_mm2"] == pytest.approx(3 * A)
    # No tumour: counted, but positions relative to a tumour are undefined.
    assert f["tls_intratumoural_count"] == 0 and f["tls_peritumoural_count"] == 0
    assert math.isnan(f["tls_density_tumour_per_mm2"])
    assert math.isnan(f["tls_edge_distance_median_um"])


@pytest.mark.parametrize("layout", [[], ["T"], ["TTSS"], ["xxx"]])
def test_no_candidates(layout):
    f = feats(layout)
    assert f["tls_count"] == 0 and f["tls_area_mm2"] == 0 and f["tls_area_max_mm2"] == 0
    assert math.isnan(f["tls_area_mean_mm2"])
    assert math.isnan(f["tls_intratumoural_fraction"])
    if "T" in "".join(layout):
        assert f["tls_density_tumour_per_mm2"] == 0.0
