"""QuPath GeoJSON reading: collections, holes, MultiPolygon, conventions and bad input."""

from __future__ import annotations

import json

import pytest

from immunodig.errors import AnnotationError, InvalidGeometryError, UnknownAnnotationClassError
from immunodig.structures.geojson import is_ignore_class, is_roi_class, read_geojson
from tests.structures.helpers import feature, square, write_collection


def test_feature_collection_with_hole_and_multipolygon(tmp_path):
    path = write_collection(tmp_path / "a.geojson", [
        feature([square(0, 0, 10, 10), square(2, 2, 4, 4)], "gland"),
        feature([[square(20, 20, 22, 22)], [square(30, 30, 33, 33)]], "TLS", kind="MultiPolygon"),
    ])
    anns = read_geojson(path)
    assert [a.class_name for a in anns] == ["gland", "TLS"]
    assert anns[0].geometry.area == pytest.approx(100 - 4)
    assert anns[1].geometry.geom_type == "MultiPolygon"
    assert anns[1].geometry.area == pytest.approx(4 + 9)


def test_plain_list_and_single_feature_are_read(tmp_path):
    p1 = tmp_path / "list.geojson"
    p1.write_text(json.dumps([feature([square(0, 0, 5, 5)])]))
    p2 = tmp_path / "one.geojson"
    p2.write_text(json.dumps(feature([square(0, 0, 5, 5)], "ROI")))
    assert len(read_geojson(p1)) == 1
    assert read_geojson(p2)[0].is_roi


def test_other_object_kinds_are_skipped(tmp_path):
    path = write_collection(tmp_path / "a.geojson", [
        feature([square(0, 0, 5, 5)], "gland", object_type="tile"),
        feature([square(0, 0, 5, 5)], "lymphocyte", object_type="detection"),
        feature([square(0, 0, 5, 5)], "gland"),
    ])
    anns = read_geojson(path, classes=["gland"])
    assert [(a.index, a.object_type) for a in anns] == [(2, "annotation")]


@pytest.mark.parametrize("name, roi, ignore", [("Region*", True, False), ("roi", True, False),
                                               ("Region of interest", True, False), ("Ignore*", False, True),
                                               ("gland", False, False)])
def test_class_conventions(name, roi, ignore):
    assert is_roi_class(name) is roi
    assert is_ignore_class(name) is ignore


def test_classes_matched_ignoring_case_and_unknown_refused(tmp_path):
    path = write_collection(tmp_path / "a.geojson", [
        feature([square(0, 0, 5, 5)], "Gland"), feature([square(0, 0, 50, 50)], "Region*"),
        feature([square(6, 6, 9, 9)], "necrosis"),
    ])
    with pytest.raises(UnknownAnnotationClassError, match=r"a\.geojson: feature 2.*'necrosis'"):
        read_geojson(path, classes=["gland"])
    anns = read_geojson(path, classes=["gland", "necrosis"])
    assert [a.class_name for a in anns] == ["gland", "Region*", "necrosis"]


def test_self_intersecting_polygon_is_refused(tmp_path):
    bowtie = [[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]
    path = write_collection(tmp_path / "a.geojson", [feature([square(0, 0, 5, 5)]), feature([bowtie])])
    with pytest.raises(InvalidGeometryError, match=r"feature 1: invalid Polygon \(Self-intersection"):
        read_geojson(path)


@pytest.mark.parametrize("geometry, message", [
    ({"type": "Point", "coordinates": [1, 2]}, "geometry is a Point"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}, "invalid Polygon"),
    ({"type": "MultiPolygon", "coordinates": []}, "MultiPolygon encloses no area"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "malformed Polygon"),
    (None, "no geometry"),
])
def test_non_area_geometries_are_refused(tmp_path, geometry, message):
    f = feature([square(0, 0, 1, 1)])
    f["geometry"] = geometry
    path = write_collection(tmp_path / "a.geojson", [f])
    with pytest.raises(InvalidGeometryError, match=f"feature 0: {message}"):
        read_geojson(path)


def test_unclassified_and_malformed_files_are_refused(tmp_path):
    path = write_collection(tmp_path / "a.geojson", [feature([square(0, 0, 5, 5)], cls=None)])
    with pytest.raises(AnnotationError, match="feature 0: annotation without a classification"):
        read_geojson(path)
    bad = tmp_path / "b.geojson"
    bad.write_text("{not json")
    with pytest.raises(AnnotationError, match="b.geojson: not a readable GeoJSON"):
        read_geojson(bad)
    other = tmp_path / "c.geojson"
    other.write_text(json.dumps({"type": "Topology"}))
    with pytest.raises(AnnotationError, match="expected a GeoJSON FeatureCollection"):
        read_geojson(other)
