"""The HTML report: every section drawn from a full store, degrading on a bare one, offline-safe
(no external resource, all images inline), no patient identifier; the CLI commands."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from immunodig.report import build_report
from immunodig.report.overlays import HE_OVERLAYS

SECTIONS = ("flow", "qc", "cohort", "distributions", "performance", "risk_groups", "explanations",
            "comparison", "provenance", "gallery", "qc_pages")


class _Resources(HTMLParser):
    """Collect every URL-bearing attribute and the section ids."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.imgs: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href", "srcset", "data", "poster", "action"):
            if key in a:
                self.urls.append((tag, key, a[key] or ""))
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "section":
            self.sections.append(a.get("id"))


def _parse(html: str) -> _Resources:
    p = _Resources()
    p.feed(html)
    return p


def test_full_report_has_every_section(full_report):
    html = full_report.path.read_text()
    assert full_report.unavailable == {}, full_report.unavailable
    parsed = _parse(html)
    assert parsed.sections == list(SECTIONS)
    assert "not available:" not in html
    assert len(parsed.imgs) >= 10
    assert full_report.size_bytes == full_report.path.stat().st_size


def test_report_is_self_contained(full_report):
    html = full_report.path.read_text()
    parsed = _parse(html)
    for tag, key, url in parsed.urls:
        assert url.startswith(("data:", "#")), f"<{tag} {key}> points outside the file: {url[:60]}"
    for src in parsed.imgs:
        head, payload = src.split(",", 1)
        assert re.fullmatch(r"data:image/(png|jpeg);base64", head)
        assert len(base64.b64decode(payload, validate=True)) > 500
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html)
    assert "<script" not in html and "@import" not in html and "url(" not in html


def test_report_names_patients_only_where_slides_are_checked(full_report):
    """Pseudonyms label flagged slides (QC), slide QC pages and gallery slides only; no other
    section names one."""
    text = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", full_report.path.read_text())
    sections = dict(re.findall(r'<section id="([a-z_]+)">(.*?)</section>', text, re.S))
    assert {"qc", "gallery", "qc_pages"} <= set(sections)
    for sid, body in sections.items():
        if sid not in ("qc", "gallery", "qc_pages"):
            assert not re.search(r"\bP\d{3}\b", body), sid


def test_qc_section_lists_flagged_slides_with_reasons(full_report):
    text = full_report.path.read_text()
    qc = re.search(r'<section id="qc">(.*?)</section>', text, re.S).group(1)
    assert "1 of 30 slides raise a plausibility flag" in qc
    assert "s_0000000000000003" in qc and "P003" in qc and "nuclei_density_low" in qc
    assert "nuclei 150 per mm² (&lt; 500)" in qc
    assert '<div class="table-scroll">' in qc
    # the flagged slide links to its QC page, and its gallery picture too
    assert '<a href="#qc-s_0000000000000003">s_0000000000000003</a>' in qc
    assert re.search(r'<figure>\s*<img src="data:image/jpeg;base64,[^"]+" alt="s_0000000000000003">'
                     r'\s*<figcaption>[^<]*· <a href="#qc-s_0000000000000003">QC page</a>', qc)
    assert "Flagged-slides gallery: 1 of 1 flagged slides" in qc


def test_every_slide_has_a_qc_page_with_its_measures_and_flags(full_report):
    text = full_report.path.read_text()
    pages = dict(re.findall(r'<article id="qc-(s_[0-9a-f]+)" class="page">(.*?)</article>', text, re.S))
    assert len(pages) == 30
    flagged = pages["s_0000000000000003"]
    assert "s_0000000000000003 · HE · patient P003 · flags: nuclei_density_low" in flagged
    assert "<td>nuclei_per_mm2</td><td>150</td>" in flagged and "<td>tissue_area_mm2</td><td>0.8</td>" in flagged
    assert "<td>nuclei_density_low</td><td>nuclei 150 per mm² (&lt; 500)</td>" in flagged
    assert '<a href="#qc">back to slide quality control</a>' in flagged
    assert "no flag" in pages["s_0000000000000000"] and "<caption>flags</caption>" not in pages["s_0000000000000000"]
    # the main gallery links its slides to their pages
    gallery = re.search(r'<section id="gallery">(.*?)</section>', text, re.S).group(1)
    assert '<a href="#qc-s_0000000000000000">QC page</a>' in gallery


def test_bare_store_degrades_section_by_section(bare_store, tmp_path):
    info = build_report(bare_store, tmp_path / "bare.html", max_gallery=1)
    html = info.path.read_text()
    for section in ("performance", "risk_groups", "explanations", "comparison"):
        assert section in info.unavailable
        assert "no model evaluate run" in info.unavailable[section] or \
            "no model fit run" in info.unavailable[section]
    assert html.count("not available:") >= 4
    for section in ("flow", "cohort", "distributions", "provenance", "gallery"):
        assert section not in info.unavailable
    assert _parse(html).sections == list(SECTIONS)


def test_flow_counts(model_store):
    from immunodig.report.cohort import cohort_flow

    flow = cohort_flow(model_store)
    assert (flow.slides_found, flow.slides_done, flow.slides_failed) == (32, 30, 2)
    assert flow.failed_by_reason == {"corrupt": 1, "not_found": 1}
    assert flow.patients["patients"] == 30 and flow.patients["with_clinical"] == 29
    assert flow.patients["without_clinical"] == 1
    assert flow.patients["with_resistance"] == 29 - 2  # every 10th patient undetermined


def test_cohort_table_columns(model_store):
    from immunodig.report.cohort import cohort_table
    from immunodig.store import query

    df = query(model_store, "select * from patient_dataset").to_pandas()
    table = cohort_table(df)
    assert list(table.columns) == ["characteristic", "level", "resistant", "not resistant",
                                   "undetermined", "all"]
    n = table.iloc[0]
    assert int(n["resistant"]) + int(n["not resistant"]) + int(n["undetermined"]) == \
        int(n["all"]) == 30


def test_cli_report_show_export(model_store, bare_store, tmp_path):
    from immunodig.cli.app import app

    runner = CliRunner()
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--store", str(bare_store), "--out", str(out),
                              "--max-slides", "1"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "report written" in res.output
    res = runner.invoke(app, ["show", "s_0000000000000000", "--store", str(model_store),
                              "--out-dir", str(tmp_path / "png")])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "png").glob("overlay_*.png"))) == len(HE_OVERLAYS)
    gj = tmp_path / "s.geojson"
    res = runner.invoke(app, ["export-geojson", "s_0000000000000000", "--store",
                              str(model_store), "--out", str(gj)])
    assert res.exit_code == 0, res.output
    assert gj.is_file() and "detections written" in res.output


def test_unknown_slide_is_a_clear_error(model_store):
    from immunodig.errors import SlideArtefactError
    from immunodig.report.slide_artefacts import locate_slide_folder

    with pytest.raises(SlideArtefactError, match="not in"):
        locate_slide_folder(model_store, "s_ffffffffffffffff")
