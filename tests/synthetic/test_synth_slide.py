"""Generated slides: openslide compatibility, mpp, determinism, and truth vs drawn pixels."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from immunodig.synthetic import make_slide
from immunodig.vocab import KATHER_CLASSES

from .conftest import SLIDE_PARAMS, SLIDE_SEED

openslide = pytest.importorskip("openslide")


def _region_hash(path, loc=(600, 600), size=(512, 512)) -> str:
    with openslide.OpenSlide(str(path)) as s:
        return hashlib.sha256(np.asarray(s.read_region(loc, 0, size)).tobytes()).hexdigest()


def test_openslide_opens_pyramid_with_mpp(small_slide):
    path, truth = small_slide
    with openslide.OpenSlide(str(path)) as s:
        assert s.dimensions == (truth.width_px, truth.height_px) == (2000, 2000)
        assert s.level_count > 1 and s.level_count == truth.level_count
        assert s.level_downsamples[1] == pytest.approx(4.0)
        assert float(s.properties["openslide.mpp-x"]) == pytest.approx(0.5, rel=1e-6)
        assert float(s.properties["openslide.mpp-y"]) == pytest.approx(0.5, rel=1e-6)
        assert s.properties["openslide.vendor"] == "generic-tiff"


def test_slide_without_mpp(tmp_path):
    make_slide(tmp_path / "nompp.tiff", 5, slide_mm=0.5, write_mpp=False)
    with openslide.OpenSlide(str(tmp_path / "nompp.tiff")) as s:
        assert "openslide.mpp-x" not in s.properties


def test_other_mpp_is_written(tmp_path):
    t = make_slide(tmp_path / "q.tiff", 5, slide_mm=0.3, mpp=0.25)
    with openslide.OpenSlide(str(tmp_path / "q.tiff")) as s:
        assert float(s.properties["openslide.mpp-x"]) == pytest.approx(0.25, rel=1e-6)
        assert s.dimensions[0] * 0.25 == pytest.approx(300, abs=2)
    assert t.classmap_mpp == pytest.approx(2.0)


def test_same_seed_same_pixels(small_slide, tmp_path):
    path, _ = small_slide
    again = tmp_path / "again.tiff"
    make_slide(again, SLIDE_SEED, slide_mm=1.0, mpp=0.5, params=SLIDE_PARAMS)
    assert _region_hash(again) == _region_hash(path)
    other = tmp_path / "other.tiff"
    make_slide(other, SLIDE_SEED + 1, slide_mm=1.0, mpp=0.5, params=SLIDE_PARAMS)
    assert _region_hash(other) != _region_hash(path)


def test_truth_files(small_slide):
    import polars as pl
    from PIL import Image

    path, truth = small_slide
    d = path.parent / "truth"
    cm = np.asarray(Image.open(d / "classmap.png"))
    meta = json.loads((d / "truth.json").read_text())
    nuc = pl.read_parquet(d / "nuclei.parquet")
    assert cm.dtype == np.uint8 and cm.max() < len(KATHER_CLASSES)
    assert np.array_equal(cm, truth.classmap)
    assert meta["classmap_mpp"] * cm.shape[1] == pytest.approx(meta["width_px"] * meta["mpp"])
    areas = meta["class_areas_mm2"]
    assert sum(areas.values()) == pytest.approx(1.0, rel=1e-6)  # 1 mm x 1 mm
    assert areas["TUM"] > 0.05 and areas["BACK"] > 0.05
    assert {"x_um", "y_um", "cell_class", "tissue_class", "diameter_um"} <= set(nuc.columns)
    assert set(nuc["cell_class"].unique()) <= {"lymphocyte", "epithelial", "fibroblast", "other"}
    # tissue_class is the class map under the centroid
    g = meta["classmap_mpp"]
    ix = np.minimum((nuc["x_um"].to_numpy() / g).astype(int), cm.shape[1] - 1)
    iy = np.minimum((nuc["y_um"].to_numpy() / g).astype(int), cm.shape[0] - 1)
    assert (np.array(KATHER_CLASSES)[cm[iy, ix]] == nuc["tissue_class"].to_numpy()).all()
    lym = nuc.filter(pl.col("cell_class") == "lymphocyte")
    assert lym["diameter_um"].median() == pytest.approx(6.6, abs=0.6)
    tum = nuc.filter(pl.col("kind") == "tumour")
    assert tum["diameter_um"].median() > 9.0
    n_tum_lym = lym.filter(pl.col("tissue_class") == "TUM").height
    assert meta["til_density_tumour_per_mm2"] == pytest.approx(n_tum_lym / areas["TUM"])


def test_classmap_matches_rendered_colours(small_slide, small_slide_rgb):
    """Every class region, read back from the TIFF, has the colour of its class."""
    _, truth = small_slide
    f = int(round(truth.classmap_mpp / truth.mpp))
    cls = np.repeat(np.repeat(truth.classmap, f, 0), f, 1)
    rgb = small_slide_rgb.astype(float)
    mean = {c: rgb[cls == i].mean(0) for i, c in enumerate(KATHER_CLASSES) if (cls == i).any()}
    assert mean["BACK"].min() > 230
    for c, m in mean.items():
        if c != "BACK":
            assert m.mean() < mean["BACK"].mean() - 8, c
    if "LYM" in mean:
        assert mean["LYM"].mean() < mean["STR"].mean() - 25
    assert mean["TUM"].mean() < mean["STR"].mean()


def test_nuclei_are_drawn_where_the_table_says(small_slide, small_slide_rgb):
    _, truth = small_slide
    df = truth.nuclei_frame()
    rgb = small_slide_rgb.astype(float).mean(axis=2)
    lym = df.filter(df["kind"] == "lymphocyte")
    x = np.clip(np.rint(lym["x_px"].to_numpy()).astype(int), 0, rgb.shape[1] - 1)
    y = np.clip(np.rint(lym["y_px"].to_numpy()).astype(int), 0, rgb.shape[0] - 1)
    assert len(lym) > 100
    assert np.mean(rgb[y, x] < 90) > 0.95  # lymphocyte centres are dark
    # a point 10 µm away from every nucleus centre is not a dark nucleus
    rng = np.random.default_rng(0)
    px, py = rng.integers(0, rgb.shape[1], 4000), rng.integers(0, rgb.shape[0], 4000)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(np.c_[df["x_px"], df["y_px"]]).query(np.c_[px, py])
    far = d > 40  # 20 µm at 0.5 µm/px
    assert np.mean(rgb[py[far], px[far]] < 90) < 0.02


def test_dark_small_blobs_count_intratumoural_lymphocytes(small_slide, small_slide_rgb):
    """Independent count: dark round blobs of lymphocyte size inside TUM ~ truth count."""
    from skimage.measure import label, regionprops

    _, truth = small_slide
    f = int(round(truth.classmap_mpp / truth.mpp))
    tum = np.repeat(np.repeat(truth.classmap == KATHER_CLASSES.index("TUM"), f, 0), f, 1)
    dark = small_slide_rgb.astype(float).mean(axis=2) < 70
    px_um2 = truth.mpp ** 2
    n = 0
    for r in regionprops(label(dark & tum)):
        if 20 < r.area * px_um2 < 60 and r.eccentricity < 0.8:
            n += 1
    df = truth.nuclei_frame()
    expected = df.filter((df["kind"] == "lymphocyte") & (df["tissue_class"] == "TUM")).height
    assert expected > 100
    assert 0.7 * expected < n < 1.15 * expected
