"""Inference engine on a generated slide: class proportions vs the ground-truth class map."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from immunodig.errors import ConfigError
from immunodig.features.classmap import class_map_rgb
from immunodig.tissue.classifier import load_tissue_classifier
from immunodig.tissue.inference import class_proportions, classify_tiles
from immunodig.vocab import KATHER_CLASSES

#: Largest allowed |predicted - true| fraction of tissue per class. Tiles straddling a class
#: boundary carry one label while the truth is per pixel, which alone moves fractions by a few
#: per cent on a 1.6 mm slide; the rest is classifier error.
PROPORTION_TOLERANCE = 0.10


@pytest.fixture(scope="module")
def small_slide(tmp_path_factory):
    from immunodig.synthetic.slide import make_slide

    d = tmp_path_factory.mktemp("slide")
    truth = make_slide(d / "s.tiff", seed=5, slide_mm=1.6, mpp=0.5)
    return d / "s.tiff", truth


@pytest.fixture(scope="module")
def grid(small_slide):
    from immunodig.slides import Slide, tile_grid, tissue_mask

    path, _ = small_slide
    with Slide(path) as s:
        mask = tissue_mask(s, 8.0)
        return tile_grid(mask, s.mpp, s.dimensions, 0.5, 224, 0.5)


def _truth_fractions(truth, tiles: pl.DataFrame) -> dict[str, float]:
    """Per-pixel truth over the area covered by the tile grid, as fractions of tissue."""
    f = int(round(truth.classmap_mpp / truth.mpp))
    cm = truth.classmap
    counts = np.zeros(len(KATHER_CLASSES))
    for x, y, w in zip(tiles["x_px"], tiles["y_px"], tiles["w_px"]):
        block = cm[y // f:(y + w) // f, x // f:(x + w) // f]
        counts += np.bincount(block.ravel(), minlength=len(KATHER_CLASSES))
    counts[KATHER_CLASSES.index("BACK")] = 0
    return {c: counts[i] / counts.sum() for i, c in enumerate(KATHER_CLASSES) if c != "BACK"}


def test_class_proportions_match_ground_truth(small_slide, grid):
    path, truth = small_slide
    tiles = grid.filter(~pl.col("qc_background"))
    out = classify_tiles(path, tiles, None, num_workers=1, batch_size=32)
    assert out.height == tiles.height
    assert {f"prob_{c}" for c in KATHER_CLASSES} | {"pred_class", "qc_pass", "qc_blur"} <= set(out.columns)
    assert out["prob_TUM"].dtype == pl.Float32
    ok = out.filter(pl.col("qc_pass"))
    assert ok.height >= 0.9 * out.height
    np.testing.assert_allclose(ok.select([f"prob_{c}" for c in KATHER_CLASSES]).to_numpy().sum(1), 1, rtol=1e-4)
    got = class_proportions(out)
    want = _truth_fractions(truth, ok)
    diffs = {c: abs(got[c] - want[c]) for c in want}
    assert max(diffs.values()) <= PROPORTION_TOLERANCE, (got, want)
    img = class_map_rgb(out, int(out["col"].max()) + 1, int(out["row"].max()) + 1)
    assert img.shape[:2] == (out["row"].max() + 1, out["col"].max() + 1)
    tum = out.filter(pl.col("pred_class") == "TUM").row(0, named=True)
    assert tuple(img[tum["row"], tum["col"]]) == (0x94, 0x67, 0xBD)


def test_failed_qc_tiles_are_not_classified(small_slide, grid, synth_feature_model):
    path, _ = small_slide
    tiles = grid.filter(~pl.col("qc_background")).head(12)
    tiles = tiles.with_columns(qc_pass=pl.Series([i % 3 != 0 for i in range(tiles.height)]))
    out = classify_tiles(path, tiles, load_tissue_classifier(synth_feature_model), num_workers=0)
    failed = out.filter(~pl.col("qc_pass"))
    assert failed.height == 4
    assert failed["pred_class"].null_count() == 4 and failed["prob_TUM"].null_count() == 4
    assert out.filter(pl.col("qc_pass"))["pred_class"].null_count() == 0


def test_engine_matches_direct_prediction(small_slide, grid, synth_feature_model):
    from immunodig.slides import Slide

    path, _ = small_slide
    tiles = grid.filter(~pl.col("qc_background")).head(6).with_columns(qc_pass=pl.lit(True))
    clf = load_tissue_classifier(synth_feature_model)
    out = classify_tiles(path, tiles, clf, num_workers=2, batch_size=4)
    with Slide(path) as s:
        direct = clf.predict_proba(np.stack([s.read(x, y, (224, 224), 0.5)
                                             for x, y in zip(tiles["x_px"], tiles["y_px"])]))
    got = out.select([f"prob_{c}" for c in KATHER_CLASSES]).to_numpy()
    np.testing.assert_allclose(got, direct, rtol=1e-5, atol=1e-6)


def test_tile_grid_of_other_size_is_refused(small_slide, grid, synth_feature_model):
    path, _ = small_slide
    tiles = grid.head(3).with_columns(w_px=pl.col("w_px") * 2, h_px=pl.col("h_px") * 2)
    with pytest.raises(ConfigError, match="224.0 µm tiles.*expects 224 px at 0.5 µm/px"):
        classify_tiles(path, tiles, synth_feature_model, num_workers=0)
