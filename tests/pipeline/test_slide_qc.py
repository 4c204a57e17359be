"""QC measures and plausibility flags against hand computations on small tables."""

from __future__ import annotations

import math

import polars as pl
import pytest

from immunodig.errors import ConfigError
from immunodig.pipeline.slide_qc import (
    QC_RULES,
    nuclei_measures,
    plausibility_flags,
    qc_record,
    qc_rules,
    tile_measures,
)


def _tiles() -> pl.DataFrame:
    return pl.DataFrame({
        "qc_pass": [True, True, True, False, False],
        "qc_reason": [None, None, None, "blur", "pen"],
        "qc_blur": [10.0, 30.0, 20.0, 1.0, None],
        "pred_class": ["TUM", "STR", "TUM", None, None],
        "tissue_fraction": [1.0, 0.5, 0.5, 1.0, 1.0],
    })


def test_tile_and_nuclei_measures_match_a_hand_count():
    m = tile_measures(_tiles(), 0.0125, "HE")
    assert (m["n_tiles"], m["n_tiles_qc_pass"]) == (5, 3)
    assert (m["tiles_excluded_blur"], m["tiles_excluded_pen"], m["tiles_excluded_background"]) == (1, 1, 0)
    assert m["fraction_tiles_excluded"] == pytest.approx(2 / 5)
    assert m["blur_median"] == pytest.approx(15.0)  # median of 10, 30, 20, 1
    assert (m["n_tiles_tumour"], m["fraction_tiles_tumour"]) == (2, pytest.approx(2 / 3))
    assert m["classified_tissue_mm2"] == pytest.approx(2.0 * 0.0125)
    nuclei = pl.DataFrame({"cell_class": ["lymphocyte"] * 3 + ["epithelial"]})
    n = nuclei_measures(nuclei, 0.025)
    assert n["nuclei_per_mm2"] == pytest.approx(4 / 0.025)
    assert n["nuclei_lymphocyte_per_mm2"] == pytest.approx(3 / 0.025)
    assert n["nuclei_fibroblast_per_mm2"] == 0 and n["lymphocyte_fraction"] == pytest.approx(0.75)
    assert math.isnan(nuclei_measures(nuclei.head(0), 0.0)["nuclei_per_mm2"])


def test_flags_follow_the_rules_and_their_overrides():
    he = {"n_tiles_tumour": 0.0, "nuclei_per_mm2": 100.0, "lymphocyte_fraction": 0.9,
          "fraction_tiles_excluded": 0.6, "mpp_from_override": 1.0, "mpp": 0.5}
    assert set(plausibility_flags(he, "HE", QC_RULES)) == {
        "no_tumour", "nuclei_density_low", "lymphocyte_fraction_high", "tiles_excluded_high",
        "mpp_from_override"}
    relaxed = qc_rules({"nuclei_density_low": 50, "tiles_excluded_high": 0.7})
    assert "nuclei_density_low" not in plausibility_flags(he, "HE", relaxed)
    assert set(plausibility_flags({"registration_overlap_dice": 0.5}, "CD3", QC_RULES)) == {
        "registration_poor"}
    assert set(plausibility_flags({"registration_overlap_dice": math.nan}, "CD3", QC_RULES)) == {
        "ihc_unregistered"}
    record = qc_record({"nuclei_per_mm2": math.nan, "n_tiles": 3}, "HE", QC_RULES)
    assert record["measures"] == {"n_tiles": 3.0, "nuclei_per_mm2": None}
    with pytest.raises(ConfigError, match="unknown QC rule"):
        qc_rules({"nuclei_density_lo": 1})
