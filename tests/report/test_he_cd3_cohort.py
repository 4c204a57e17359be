"""What a pathologist checks, on a small cohort of H&E and CD3 slides (issue 17, "done when"):
every compartment, TLS and tumour bud as a valid QuPath annotation in level-0 pixels, CD3
detections, CD3 and registration overlays, the report's QC pages and its CD3 gallery entries.

The cohort is hand-built (per-slide folders as build-features writes them), so this runs in
seconds; ``test_real_pipeline.py`` does the same checks on slides built by the real pipeline.
"""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
import shapely
from shapely.geometry import shape

from immunodig.report.geojson import export_slide_geojson
from immunodig.report.overlays import OVERLAY_FILES
from immunodig.report.slide_artefacts import load_slide_artefacts, locate_slide_folder
from tests.report.builders import COHORT_MARGIN_UM, MPP, SIDE_PX, cd3_slide_id, he_slide_id

N_PATIENTS = 4
COMPARTMENTS = {"tissue", "tumour region", "margin inner", "margin outer", "core"}


def check_annotations(geojson: dict, width_px: int, height_px: int) -> dict[str, list[dict]]:
    """Annotations of an export by class name, each checked: a valid, non-empty (Multi)Polygon
    inside the slide's level-0 extent with a finite ``area_um2``."""
    by_class: dict[str, list[dict]] = {}
    slide = shapely.box(0, 0, width_px, height_px)
    for f in geojson["features"]:
        props = f["properties"]
        if props["objectType"] != "annotation":
            continue
        geom = shape(f["geometry"])
        name = props["classification"]["name"]
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon"), name
        assert geom.is_valid and geom.area > 0, name
        assert slide.buffer(1e-6).contains(geom), (name, geom.bounds)
        assert props["measurements"]["area_um2"] > 0, name
        by_class.setdefault(name, []).append(f)
    return by_class


def _counted(folder, feature: str) -> float:
    """What the features count on the slide's own artefacts (as build-features computes it)."""
    from immunodig.features.slide_features import compute_slide_features
    from immunodig.report.regions import build_config

    art = load_slide_artefacts(folder)
    feats = compute_slide_features(art.tiles, art.nuclei, 0.8, build_config(art))
    return feats.filter(pl.col("feature") == feature)["value"][0]


@pytest.mark.parametrize("i", range(N_PATIENTS))
def test_he_geojson_has_every_compartment_tls_and_bud(he_cd3_store, tmp_path, i):
    folder = locate_slide_folder(he_cd3_store, he_slide_id(i))
    out = tmp_path / "he.geojson"
    export_slide_geojson(folder, out)
    by_class = check_annotations(json.loads(out.read_text()), SIDE_PX, SIDE_PX)
    assert COMPARTMENTS <= set(by_class) and all(len(by_class[c]) == 1 for c in COMPARTMENTS)
    assert len(by_class["TLS"]) == _counted(folder, "tls_count") == 1
    assert len(by_class.get("bud", [])) == _counted(folder, "tumour_bud_count")
    core = by_class["core"][0]["properties"]["measurements"]
    assert core["n_tiles"] == 4 and core["area_um2"] == pytest.approx(4 * (224 * MPP) ** 2)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["margin_um"] == COHORT_MARGIN_UM


def test_the_cohort_has_tumour_buds(he_cd3_store):
    """The per-slide check above is not vacuous: some H&E slide has a bud annotation."""
    counts = [_counted(locate_slide_folder(he_cd3_store, he_slide_id(i)), "tumour_bud_count")
              for i in range(N_PATIENTS)]
    assert sum(counts) > 0, counts


@pytest.mark.parametrize("i", range(N_PATIENTS))
def test_cd3_geojson_holds_its_positive_cells(he_cd3_store, tmp_path, i):
    folder = locate_slide_folder(he_cd3_store, cd3_slide_id(i))
    out = tmp_path / "cd3.geojson"
    counts = export_slide_geojson(folder, out, tiles=False)
    cells = pl.read_parquet(folder / "ihc_cells.parquet")
    feats = json.loads(out.read_text())["features"]
    assert counts["detections"] == cells.height == 150 + 50 * i
    detections = [f for f in feats if f["properties"]["objectType"] == "detection"]
    assert {f["properties"]["classification"]["name"] for f in detections} == {"CD3 positive"}
    assert all(shape(f["geometry"]).is_valid for f in detections)


def test_show_writes_cd3_and_registration_overlays(he_cd3_store, tmp_path):
    from typer.testing import CliRunner

    from immunodig.cli.app import app

    def cli(*args):
        return CliRunner().invoke(app, [str(a) for a in args])

    res = cli("show", cd3_slide_id(0), "--store", he_cd3_store, "--out-dir", tmp_path / "png")
    assert res.exit_code == 0, res.output
    for kind in ("positive_density", "registration", "mask", "qc"):
        assert (tmp_path / "png" / OVERLAY_FILES[kind]).is_file(), res.output
    assert not (tmp_path / "png" / OVERLAY_FILES["classes"]).exists()  # no empty class map
    res = cli("show", cd3_slide_id(2), "--store", he_cd3_store, "--out-dir", tmp_path / "lonely")
    assert res.exit_code == 0 and "registration: not available" in res.output
    assert (tmp_path / "lonely" / OVERLAY_FILES["positive_density"]).is_file()


def test_registration_quality_reaches_store_and_report(he_cd3_store, he_cd3_report):
    from immunodig.store import query

    qc = query(he_cd3_store, "select slide_id, registration_overlap_dice, flags from slide_qc "
                             "where stain = 'CD3' order by slide_id").rows()
    assert qc == [(cd3_slide_id(0), 0.83, ""), (cd3_slide_id(1), 0.55, "registration_poor"),
                  (cd3_slide_id(2), None, "ihc_unregistered"), (cd3_slide_id(3), 0.83, "")]
    html = he_cd3_report.path.read_text()
    page = re.search(rf'<article id="qc-{cd3_slide_id(1)}" class="page">(.*?)</article>', html, re.S)
    assert page and "<td>registration_overlap_dice</td><td>0.55</td>" in page.group(1)
    assert "tissue overlap Dice 0.55 (&lt; 0.7)" in page.group(1)


def test_report_has_qc_pages_and_cd3_gallery_entries(he_cd3_report):
    assert he_cd3_report.unavailable.keys() <= {"cohort", "distributions", "performance", "risk_groups",
                                                "explanations", "comparison"}, he_cd3_report.unavailable
    html = he_cd3_report.path.read_text()
    sections = dict(re.findall(r'<section id="([a-z_]+)">(.*?)</section>', html, re.S))
    pages = re.findall(r'<article id="qc-(s_[0-9a-f]+)" class="page">', sections["qc_pages"])
    assert sorted(pages) == sorted([he_slide_id(i) for i in range(N_PATIENTS)]
                                   + [cd3_slide_id(i) for i in range(N_PATIENTS)])
    for sid, body in (("gallery", sections["gallery"]), ("qc", sections["qc"])):
        cd3 = re.findall(r'alt="(s_[0-9a-f]+)">\s*<figcaption>\1 \(CD3, patient (P\d{3})\)', body)
        assert cd3, sid
        for slide_id, _ in cd3:
            assert f'<a href="#qc-{slide_id}">QC page</a>' in body
    gallery_cd3 = re.findall(r'\(CD3, patient P\d{3}\)', sections["gallery"])
    assert len(gallery_cd3) == N_PATIENTS
    # the flagged-slides gallery samples both stains: the flagged H&E and the two flagged CD3 slides
    flagged = re.findall(r'alt="(s_[0-9a-f]+)">\s*<figcaption>', sections["qc"])
    assert sorted(flagged) == sorted([he_slide_id(0), cd3_slide_id(1), cd3_slide_id(2)])


# ------------------------------------------------------------------ the same on a real build
@pytest.fixture(scope="module")
def built_store(tmp_path_factory):
    """Three generated patients with an H&E and a CD3 slide each (1.2 mm), built by the real
    pipeline (tissue classifier, classical nuclei, rule cell classifier, IHC registration) with
    a 200 µm margin; about 2 minutes on two cores."""
    from immunodig.config import BuildConfig
    from immunodig.pipeline.build import build_features
    from immunodig.synthetic import make_cohort

    root = tmp_path_factory.mktemp("built")
    cohort = make_cohort(root / "cohort", n_patients=3, seed=1, slide_mm=1.2, cd3_fraction=1.0)
    lines = cohort.manifest.read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0].endswith(("_HE1.tiff", "_CD3.tiff"))]
    (root / "slides.csv").write_text("\n".join(keep) + "\n")
    slides = [cohort.slides_dir / ln.split(",")[0] for ln in keep[1:]]
    store = root / "cohort.duckdb"
    summary = build_features(slides, store, BuildConfig(margin_um=200.0, cell_classifier="rule"),
                             manifest=root / "slides.csv", workers=2, show_progress=False)
    assert summary.ok, summary.failed
    return store


@pytest.mark.slow
def test_built_slides_export_what_their_features_count(built_store, tmp_path):
    """Every slide built by the pipeline: one annotation per compartment its stored features give
    an area to, one TLS per counted TLS, one bud per counted bud, all valid in level-0 pixels;
    every CD3 slide: its positive cells as detections, its overlays and its registration."""
    from immunodig.report import build_report
    from immunodig.report.overlays import write_slide_overlays
    from immunodig.store import query

    slides = query(built_store, "select slide_id, stain, width_px, height_px from slides order by slide_id").rows()
    feats = query(built_store, "select slide_id, feature, value from slide_features_current").rows()
    value = {(s, f): v for s, f, v in feats}
    area = {"tumour region": "area_tumour_region_mm2", "margin inner": "area_margin_inner_mm2",
            "margin outer": "area_margin_outer_mm2", "core": "area_core_mm2"}
    assert {stain for _, stain, _, _ in slides} == {"HE", "CD3"}
    for slide_id, stain, w, h in slides:
        folder = locate_slide_folder(built_store, slide_id)
        out = tmp_path / f"{slide_id}.geojson"
        counts = export_slide_geojson(folder, out)
        data = json.loads(out.read_text())
        if stain == "HE":
            by_class = check_annotations(data, w, h)
            assert "tissue" in by_class
            for name, feature in area.items():
                assert (name in by_class) == (value[(slide_id, feature)] > 0), (slide_id, name)
            assert len(by_class.get("TLS", [])) == value[(slide_id, "tls_count")]
            assert len(by_class.get("bud", [])) == value[(slide_id, "tumour_bud_count")]
        else:
            cells = pl.read_parquet(folder / "ihc_cells.parquet")
            assert counts["detections"] == cells.height > 0
            written = write_slide_overlays(folder, tmp_path / slide_id)
            assert all(not isinstance(p, str) for p in written.values()), written
    info = build_report(built_store, tmp_path / "report.html", max_gallery=6)
    html = info.path.read_text()
    for slide_id, *_ in slides:
        assert f'<article id="qc-{slide_id}" class="page">' in html
    assert len(re.findall(r"\(CD3, patient P\d{4}\)", html)) >= 3
