"""Cohort designs: the demo layout changes slides only, never patients or outcomes; the
planted signal's population values are the documented ones."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from immunodig.synthetic import make_cohort, plan_cohort
from immunodig.synthetic.design import DEMO_DESIGN, STANDARD_DESIGN, CohortDesign


def test_demo_design_keeps_patients_and_takes_the_first_he_slide():
    standard = plan_cohort(40, seed=5)
    demo = plan_cohort(40, seed=5, design=DEMO_DESIGN)
    he = [j for j in demo if j.stain == "HE"]
    assert [j.patient_id for j in he] == sorted({j.patient_id for j in standard})
    assert all(j.name.endswith("_HE1") for j in he)
    first = {j.patient_id: j for j in standard if j.name.endswith("_HE1")}
    for j in he:  # same slide seed and densities as the standard design's first slide
        assert j.seed == first[j.patient_id].seed
        assert j.params.til_tumour_per_mm2 == first[j.patient_id].params.til_tumour_per_mm2
        lo, hi = DEMO_DESIGN.tumour_radius_frac
        assert lo <= j.params.layout.tumour_radius_frac <= hi
        assert j.params.layout.tls_radius_um == DEMO_DESIGN.tls_radius_um
    assert ({j.patient_id for j in demo if j.stain == "CD3"}
            == {j.patient_id for j in standard if j.stain == "CD3"})
    assert len(standard) > len(demo)


def test_design_checks_its_knobs():
    with pytest.raises(ValueError, match="max_he_slides"):
        CohortDesign(max_he_slides=0)
    with pytest.raises(ValueError, match="tumour_radius_frac"):
        CohortDesign(tumour_radius_frac=(0.3, 0.6))
    assert STANDARD_DESIGN == CohortDesign()


def test_demo_slides_hold_large_lymphoid_aggregates(tmp_path):
    pytest.importorskip("openslide")
    paths = make_cohort(tmp_path, 6, seed=7, slide_mm=1.2, cd3_fraction=0.0, design=DEMO_DESIGN)
    names = pl.read_csv(paths.manifest)["file"].str.replace(".tiff", "", literal=True)
    assert len(names) == 6
    areas = [json.loads((paths.truth_dir / n / "truth.json").read_text())["class_areas_mm2"]
             for n in names]
    assert sum(a["LYM"] > 0.03 for a in areas) >= 3  # TLS-sized (>= 0.03 mm²) on most slides
    assert min(a["TUM"] for a in areas) > 0.1
    latent = pl.read_csv(paths.truth_dir / "patients.csv")
    assert (latent["n_slides"] == 1).all()


def test_population_signal_matches_the_documented_values():
    from immunodig.synthetic.population import population_signal

    pop = population_signal(20000, seed=0)
    # docs/synthetic.md, "Patients and the planted outcome signal"
    assert pop["true_probability"]["auc"] == pytest.approx(0.84, abs=0.01)
    assert pop["morphology"]["auc"] == pytest.approx(0.82, abs=0.01)
    assert pop["log_til"]["auc"] == pytest.approx(0.75, abs=0.01)
    assert pop["morphology"]["c_index"] == pytest.approx(0.73, abs=0.01)
    assert pop["log_til"]["c_index"] == pytest.approx(0.68, abs=0.01)
    assert 0.27 < pop["cohort"]["resistant_fraction"] < 0.33
    assert np.isfinite(pop["true_probability"]["c_index"])
