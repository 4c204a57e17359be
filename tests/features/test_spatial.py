"""Spatial-organisation features against values computed by hand or by brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunodig.config import BuildConfig
from immunodig.features.slide_features import compute_slide_features
from immunodig.features.spatial import morisita_horn

from .builders import make_nuclei, make_tiles

CFG = BuildConfig()  # 112 µm tiles; Morisita quadrats of round(500 / 112) = 4 tiles
T = 112.0


def feats(tiles, nuclei=None, cfg=CFG):
    df = compute_slide_features(tiles, nuclei, 1.0, cfg)
    return dict(zip(df["feature"], df["value"]))


def block(rows: int, cols: int, ch: str) -> list[list[str]]:
    return [[ch] * cols for _ in range(rows)]


def test_morisita_horn_formula():
    assert morisita_horn(np.array([2.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(2 / 3)
    assert morisita_horn(np.array([1.0, 3.0]), np.array([2.0, 6.0])) == pytest.approx(1.0)
    assert morisita_horn(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 0.0
    assert math.isnan(morisita_horn(np.zeros(2), np.ones(2)))


def test_morisita_tiles_segregated_and_mixed():
    g = block(8, 8, "S")
    for r in range(4):
        for c in range(4):
            g[r][c] = "L"
            g[r + 4][c + 4] = "T"
    f = feats(make_tiles(["".join(r) for r in g]))
    assert f["morisita_lym_tumour_tiles"] == 0.0
    # Quadrat (0,0): 2 LYM + 1 TUM tiles; quadrat (0,1): 1 TUM tile -> p=(1,0), q=(.5,.5).
    g = block(4, 8, "S")
    g[0][0], g[0][1], g[1][1], g[2][6] = "L", "L", "T", "T"
    f = feats(make_tiles(["".join(r) for r in g]))
    assert f["morisita_lym_tumour_tiles"] == pytest.approx(2 / 3)


def test_nuclei_features_by_hand(til_stub):
    tiles = make_tiles(["TTTTTTTT"] * 8)
    # Tumour nuclei along y = 300 µm; lymphocytes 10 µm and 30 µm away from two of them.
    tum = np.array([[100.0, 300.0], [200.0, 300.0], [300.0, 300.0]])
    lym = np.array([[110.0, 300.0], [200.0, 330.0]])
    xy = np.vstack([tum, lym])
    cls = ["epithelial"] * 3 + ["lymphocyte"] * 2
    f = feats(tiles, make_nuclei(xy[:, 0], xy[:, 1], cls, tiles))
    # Distances to the nearest lymphocyte: 10, 30, sqrt(100^2 + 30^2) = 104.4 -> median 30.
    assert f["nn_tumour_to_lym_median_um"] == pytest.approx(30.0)
    assert f["tumour_nuclei_lym_within_20um_fraction"] == pytest.approx(1 / 3)
    # All in one 500 µm quadrat -> identical distributions.
    assert f["morisita_lym_tumour_nuclei"] == pytest.approx(1.0)


def test_nuclei_edge_cases(til_stub):
    tiles = make_tiles(["TTT"])
    only_tum = make_nuclei([10.0, 50.0], [10.0, 50.0], "epithelial", tiles)
    f = feats(tiles, only_tum)
    assert math.isnan(f["nn_tumour_to_lym_median_um"])
    assert f["tumour_nuclei_lym_within_20um_fraction"] == 0.0
    assert math.isnan(f["morisita_lym_tumour_nuclei"])
    assert math.isnan(f["ripley_lr_lym_r50_um"])
    empty = make_nuclei([], [], "lymphocyte", tiles)
    f = feats(tiles, empty)
    assert math.isnan(f["tumour_nuclei_lym_within_20um_fraction"])
    assert f["tumour_bud_count"] == 0.0
    f = feats(make_tiles([]), make_nuclei([], [], "lymphocyte"))
    assert math.isnan(f["ripley_lr_lym_r20_um"])
    assert math.isnan(f["tumour_bud_density_margin_per_mm2"])


def lattice_n(r_over_s: float) -> int:
    """Neighbours of a lattice point within r (brute force)."""
    k = int(np.ceil(r_over_s)) + 1
    i, j = np.mgrid[-k:k + 1, -k:k + 1]
    return int(((i**2 + j**2) <= r_over_s**2).sum()) - 1


def test_ripley_on_lattice_exact(til_stub):
    # 8 µm lattice filling a 20 x 20 tile window (2240 µm, 280 points a side): every point at
    # least r from the border has exactly lattice_n(r / 8) neighbours; K = A * N / (n - 1).
    s, side = 8.0, 280
    tiles = make_tiles(["S" * 20] * 20)
    g = (np.arange(side) + 0.5) * s
    x, y = np.meshgrid(g, g)
    f = feats(tiles, make_nuclei(x.ravel(), y.ravel(), "lymphocyte"))
    n, area = side * side, (20 * T) ** 2
    for r in (20, 50, 100):
        k = area * lattice_n(r / s) / (n - 1)
        assert f[f"ripley_lr_lym_r{r}_um"] == pytest.approx(math.sqrt(k / math.pi) - r, abs=1e-6)


def test_ripley_random_is_near_zero_in_irregular_window(til_stub):
    # L-shaped tissue window; complete spatial randomness in it gives L(r) - r ~ 0 only with
    # edge correction. Clustered points give a clearly positive value.
    layout = ["S" * 20] * 10 + ["S" * 8 + "." * 12] * 10
    tiles = make_tiles(layout)
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 20 * T, size=(60000, 2))
    inside = (pts[:, 1] < 10 * T) | (pts[:, 0] < 8 * T)
    pts = pts[inside][:15000]
    f = feats(tiles, make_nuclei(pts[:, 0], pts[:, 1], "lymphocyte"))
    for r in (20, 50, 100):
        assert abs(f[f"ripley_lr_lym_r{r}_um"]) < 0.015 * r, r  # uncorrected: -2.5 at 100 µm
    centres = rng.uniform(300, 2000, size=(40, 2)) * [1, 0.5]
    clustered = (centres[rng.integers(0, 40, 4000)] + rng.normal(0, 15, (4000, 2)))
    f = feats(tiles, make_nuclei(clustered[:, 0], clustered[:, 1], "lymphocyte"))
    assert f["ripley_lr_lym_r20_um"] > 10


def test_heterogeneity():
    f = feats(make_tiles(["TTSS", "TTSS"]))
    assert f["tissue_class_entropy_bits"] == pytest.approx(1.0)
    # 4-neighbour pairs: 6 across (2 differ), 4 down (0 differ).
    assert f["tissue_mixing_fraction"] == pytest.approx(2 / 10)
    f = feats(make_tiles(["TTS.T", "TTS.."]))
    assert f["tumour_fragment_count"] == 2
    assert f["tumour_largest_fragment_fraction"] == pytest.approx(4 / 5)
    f = feats(make_tiles(["T"]))
    assert f["tissue_class_entropy_bits"] == 0.0
    assert math.isnan(f["tissue_mixing_fraction"])
    f = feats(make_tiles([]))
    assert math.isnan(f["tissue_class_entropy_bits"])
    assert f["tumour_fragment_count"] == 0
    assert math.isnan(f["tumour_largest_fragment_fraction"])


def test_tumour_bud_proxy(til_stub):
    # Stroma columns 0-9, tumour 10-19: the band covers stroma columns 6-9 (x 672-1120 µm).
    tiles = make_tiles(["S" * 10 + "T" * 10] * 6)
    groups = [
        [(700, 100)],  # single cell in marginal stroma: bud
        [(800, 300), (812, 300), (806, 310)],  # 3 cells: bud
        [(700 + 10 * i, 500) for i in range(6)],  # 6 cells: not a bud
        [(100, 100)],  # stroma beyond the band: not counted
        [(1200, 300)],  # inside tumour tiles: not counted
        [(1110, 600), (1125, 600)],  # straddles the edge into a TUM tile: not counted
    ]
    xy = np.array([p for g in groups for p in g], dtype=float)
    f = feats(tiles, make_nuclei(xy[:, 0], xy[:, 1], "epithelial", tiles))
    assert f["tumour_bud_count"] == 2
    margin_mm2 = 6 * 8 * (T / 1000) ** 2
    assert f["tumour_bud_density_margin_per_mm2"] == pytest.approx(2 / margin_mm2)
    # The clusters behind the count (drawn as `bud` annotations): the single cell and the trio.
    from immunodig.features.margin import compartments
    from immunodig.features.spatial import BUD_LINK_UM, tumour_bud_clusters
    from immunodig.features.tilemap import TileMap

    tmap = TileMap.from_tiles(tiles, T)
    buds = tumour_bud_clusters(tmap, compartments(tmap, CFG.margin_um), xy, BUD_LINK_UM)
    assert [b.tolist() for b in buds] == [[0], [1, 2, 3]]
