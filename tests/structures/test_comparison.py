"""Predicted structures against reference polygons: counts, areas and one-to-one matching."""

from __future__ import annotations

import math

import polars as pl
import pytest
from shapely import to_wkb
from shapely.geometry import box

from immunodig.structures.comparison import compare_structures, pool_comparisons, table_structures


def test_counts_areas_and_matches():
    ref = [("Gland", box(0, 0, 10, 10)), ("Gland", box(20, 0, 30, 10)), ("Gland", box(40, 0, 50, 10)),
           ("TLS", box(0, 50, 40, 90))]
    pred = [("Gland", box(1, 0, 11, 10)),       # IoU 0.82: match
            ("Gland", box(21, 1, 23, 3)),       # tiny, centroid inside: match
            ("Gland", box(45, 0, 60, 10)),      # IoU 0.25, centroid outside: no match
            ("Gland", box(0, 0, 0.5, 0.5)),     # below the minimum area: ignored
            ("TLS", box(0, 50, 40, 90))]
    res = compare_structures(ref, pred, slide_mpp=2.0, classes=["Gland", "TLS"], min_area_um2=2.0)
    g = res["Gland"]
    assert (g["n_reference"], g["n_predicted"], g["matched"]) == (3, 3, 2)
    assert g["recall"] == pytest.approx(2 / 3) and g["precision"] == pytest.approx(2 / 3)
    assert g["area_reference_mm2"] == pytest.approx(300 * 4e-6)
    assert g["area_predicted_mm2"] == pytest.approx((100 + 4 + 150) * 4e-6)
    assert g["matched_iou_mean"] == pytest.approx((90 / 110 + 4 / 100) / 2)
    assert res["TLS"]["matched"] == 1 and res["TLS"]["area_ratio"] == pytest.approx(1.0)


def test_each_object_is_matched_once():
    ref = [("Gland", box(0, 0, 10, 10))]
    pred = [("Gland", box(0, 0, 10, 9)), ("Gland", box(0, 0, 10, 10))]
    res = compare_structures(ref, pred, 1.0, ["Gland"])["Gland"]
    assert res["matched"] == 1 and res["matched_iou_mean"] == pytest.approx(1.0)
    assert res["precision"] == pytest.approx(0.5)


def test_no_reference_gives_nan_ratios_and_pooling_sums():
    a = compare_structures([], [("TLS", box(0, 0, 5, 5))], 1.0, ["TLS"])
    assert math.isnan(a["TLS"]["count_ratio"]) and a["TLS"]["precision"] == 0.0
    b = compare_structures([("TLS", box(0, 0, 5, 5))], [("TLS", box(0, 0, 5, 5))], 1.0, ["TLS"])
    pooled = pool_comparisons([a, b])["TLS"]
    assert (pooled["n_reference"], pooled["n_predicted"], pooled["matched"]) == (1, 2, 1)
    assert pooled["count_ratio"] == 2.0 and pooled["precision"] == 0.5 and pooled["matched_iou_mean"] == 1.0


def test_reads_a_structures_table():
    table = pl.DataFrame({"class": ["Gland"], "geometry_wkb": [to_wkb(box(0, 0, 2, 2))]})
    (cls, geom), = table_structures(table)
    assert cls == "Gland" and geom.area == 4
