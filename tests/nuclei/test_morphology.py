"""Per-nucleus measures on shapes with known geometry."""

import numpy as np
import pytest

from immunodig.nuclei.morphology import MORPHOLOGY_COLUMNS, measure_nuclei
from tests.nuclei.conftest import draw_nuclei


def test_disc_and_ellipse_measures():
    mpp = 0.5
    rgb = draw_nuclei((80, 120), [(30, 40)], radius_px=10)
    labels = np.zeros((80, 120), np.int32)
    yy, xx = np.mgrid[0:80, 0:120]
    labels[(xx - 30) ** 2 + (yy - 40) ** 2 <= 100] = 1
    labels[((xx - 90) / 20.0) ** 2 + ((yy - 40) / 5.0) ** 2 <= 1] = 2
    m = measure_nuclei(rgb, labels, mpp)
    assert set(m) == set(MORPHOLOGY_COLUMNS)
    assert m["x_px"][0] == pytest.approx(30, abs=0.01) and m["y_px"][0] == pytest.approx(40, abs=0.01)
    assert m["area_um2"][0] == pytest.approx(np.pi * 5**2, rel=0.03)  # r = 10 px = 5 µm
    assert m["perimeter_um"][0] == pytest.approx(2 * np.pi * 5, rel=0.08)
    assert m["circularity"][0] > 0.9 and m["circularity"][1] < 0.75
    assert m["eccentricity"][0] < 0.1 and m["eccentricity"][1] == pytest.approx(np.sqrt(1 - 0.25**2), abs=0.02)
    assert m["solidity"][0] > 0.9
    assert m["h_od_mean"][0] > m["h_od_mean"][1]  # the disc is drawn dark, the ellipse sits on background
    assert m["texture_contrast"][0] == pytest.approx(0.0)  # uniform colour
    assert m["texture_homogeneity"][0] == pytest.approx(1.0)


def test_empty_labels():
    m = measure_nuclei(np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5), np.int32), 0.5)
    assert all(len(v) == 0 for v in m.values())


def test_instance_centroids_match_regionprops():
    from skimage.measure import regionprops

    from immunodig.nuclei.morphology import instance_centroids

    labels = np.zeros((30, 40), np.int32)
    labels[2:7, 3:12] = 1
    labels[15:28, 20:23] = 2
    labels[10, 35] = 3
    expected = np.array([[r.centroid[1], r.centroid[0]] for r in regionprops(labels)])
    np.testing.assert_allclose(instance_centroids(labels), expected)
    assert instance_centroids(np.zeros((5, 5), np.int32)).shape == (0, 2)
