"""End to end on a generated slide of known layout: features from a perfect classifier's tile
table and the drawn nuclei, against values computed directly from the ground truth.

Tolerances (stated per check) cover the tile discretisation only: a perfect classifier still
labels each 112 µm tile with its majority class, which shrinks small, scattered classes (debris,
mucus) and moves region boundaries by up to half a tile.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from immunodig.config import BuildConfig
from immunodig.features.composition import CLASS_STEM, TISSUE_CLASSES
from immunodig.features.slide_features import compute_slide_features
from immunodig.vocab import KATHER_CLASSES

from .truth import (
    BACK,
    STR,
    TUM,
    density_in,
    nn_median_brute,
    perfect_tiles,
    pixel_compartments,
    ripley_lr_brute,
)

slide_module = pytest.importorskip("immunodig.synthetic.slide")
CFG = BuildConfig()


@pytest.fixture(scope="module")
def slide():
    model = slide_module.build_slide_model(3, 4.0, 0.5, slide_module.SlideParams())
    px_um = model.mpp * model.factor
    cm = model.classmap
    n = model.nuclei
    nuclei = pl.DataFrame({
        "x_um": n.x_um.astype(float), "y_um": n.y_um.astype(float),
        "tissue_class": np.array(KATHER_CLASSES)[model.nucleus_tissue],
        "cell_class": n.cell_class.astype(str),
    })
    tiles = perfect_tiles(cm, px_um, CFG.tile_size_um)
    tissue_mm2 = float((cm != BACK).sum() * (px_um / 1000) ** 2)
    return model, px_um, tiles, nuclei, tissue_mm2


@pytest.fixture(scope="module")
def features(slide):
    import sys
    import types

    _, _, tiles, nuclei, tissue_mm2 = slide
    saved = sys.modules.get("immunodig.features.til")
    stub = types.ModuleType("immunodig.features.til")
    stub.til_features = lambda *a: {}
    sys.modules["immunodig.features.til"] = stub
    try:
        df = compute_slide_features(tiles, nuclei, tissue_mm2, CFG)
    finally:
        if saved is None:
            sys.modules.pop("immunodig.features.til")
        else:
            sys.modules["immunodig.features.til"] = saved
    return dict(zip(df["feature"], df["value"]))


def test_composition_matches_class_map(slide, features):
    model, _, _, _, tissue_mm2 = slide
    counts = np.bincount(model.classmap.ravel(), minlength=len(KATHER_CLASSES))
    tissue = counts.sum() - counts[BACK]
    assert features["area_tissue_mm2"] == tissue_mm2
    for c in TISSUE_CLASSES:  # within 3 percentage points
        truth = counts[KATHER_CLASSES.index(c)] / tissue
        assert features[f"prop_{CLASS_STEM[c]}"] == pytest.approx(truth, abs=0.03), c
    tsr = counts[STR] / (counts[STR] + counts[TUM])
    assert features["tsr_stroma_fraction"] == pytest.approx(tsr, abs=0.02)
    p = counts[np.arange(len(KATHER_CLASSES)) != BACK] / tissue
    p = p[p > 0]
    assert features["tissue_class_entropy_bits"] == pytest.approx(-(p * np.log2(p)).sum(), abs=0.1)


def test_margin_matches_pixel_geometry(slide, features):
    model, px_um, _, nuclei, _ = slide
    comp = pixel_compartments(model.classmap, px_um, CFG.margin_um)
    mm2 = (px_um / 1000) ** 2
    assert features["area_tumour_region_mm2"] == pytest.approx(comp["tumour"].sum() * mm2, rel=0.2)
    assert features["area_margin_mm2"] == pytest.approx(comp["margin"].sum() * mm2, rel=0.15)
    lym = nuclei.filter(pl.col("cell_class") == "lymphocyte").select("x_um", "y_um").to_numpy()
    truth = density_in(comp["margin"], px_um, lym)
    assert features["til_density_margin_per_mm2"] == pytest.approx(truth, rel=0.1)


def test_nuclei_spatial_matches_brute_force(slide, features):
    model, px_um, _, nuclei, _ = slide
    xy = nuclei.select("x_um", "y_um").to_numpy()
    lym = xy[(nuclei["cell_class"] == "lymphocyte").to_numpy()]
    tum = xy[((nuclei["cell_class"] == "epithelial") & (nuclei["tissue_class"] == "TUM")).to_numpy()]
    assert features["nn_tumour_to_lym_median_um"] == pytest.approx(nn_median_brute(tum, lym), rel=1e-9)
    window = model.classmap != BACK
    for r in (20, 50, 100):  # the tile window differs from the pixel window: 5 %
        truth = ripley_lr_brute(lym, window, px_um, r)
        assert features[f"ripley_lr_lym_r{r}_um"] == pytest.approx(truth, rel=0.05), r


def test_all_values_finite_or_documented_nan(features):
    from immunodig.features.catalog import catalog

    specs = catalog()
    for name, value in features.items():
        assert not np.isinf(value), name
        if np.isnan(value):
            assert "NaN" in specs[name].description, name
