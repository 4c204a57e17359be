"""The report on a store made by the real pipeline (synthetic cohort -> build-features ->
clinical import -> evaluate/fit, MIL). Slow: about 8 minutes on two cores."""

from __future__ import annotations

import re

import pytest


@pytest.mark.slow
def test_report_on_demo_store(tmp_path):
    from immunodig.demo import run_demo
    from immunodig.evaluation.workflow import evaluate_store, fit_store
    from immunodig.report import build_report
    from immunodig.report.geojson import export_slide_geojson
    from immunodig.report.overlays import HE_OVERLAYS, OVERLAY_FILES, write_slide_overlays
    from immunodig.report.slide_artefacts import locate_slide_folder
    from immunodig.store import query

    demo = run_demo(tmp_path / "demo", n_patients=24, workers=2, n_splits=3, n_repeats=1,
                    show_progress=False, log=lambda _: None)
    assert {m["feature_set"] for m in demo.metrics if "feature_set" in m} >= {
        "clinical", "prespecified", "morphology", "combined"}
    assert {m["model"] for m in demo.metrics} >= {"logistic", "cox", "abmil"}
    assert demo.cohort["patients"] == 24 and demo.cohort["he_slides"] == 24
    assert list(demo.step_seconds) == ["synth-cohort", "build-features", "import-clinical",
                                       "evaluate", "fit", "report"]
    cv = {"n_splits": 3, "n_repeats": 2, "seed": 0, "n_boot": 100}
    evaluate_store(demo.store, "resistance", "morphology", "logistic", **cv)
    evaluate_store(demo.store, "resistance", "combined", "logistic", **cv)
    evaluate_store(demo.store, "pfs", "morphology", "cox", **cv)
    fit_store(demo.store, "pfs", "morphology", "cox", tmp_path / "cox.joblib")

    info = build_report(demo.store, tmp_path / "demo" / "immunodig.html", max_gallery=6)
    assert info.unavailable == {}, info.unavailable
    html = info.path.read_text()
    assert len(re.findall(r'<img src="data:image/(?:png|jpeg);base64,', html)) >= 10

    slide_id = query(demo.store, "select slide_id from slides where stain = 'HE' "
                                 "order by slide_id limit 1")["slide_id"][0]
    folder = locate_slide_folder(demo.store, slide_id)
    written = write_slide_overlays(folder)
    assert set(written) == set(HE_OVERLAYS), written  # an H&E slide: no IHC overlays
    assert all((folder / OVERLAY_FILES[k]).is_file() for k in HE_OVERLAYS), written
    counts = export_slide_geojson(folder, tmp_path / "s.geojson")
    assert counts["tiles"] > 0 and counts["detections"] > 0
