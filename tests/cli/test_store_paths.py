"""Issue 13: ``build-features --store-paths absolute|relative|none`` decides what is kept of a
slide file's path (its name often carries identifiers) in the store, slide.json and
failure.json; show, report and status still run with every setting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from immunodig import slide_folder as sf
from immunodig.report.slide_artefacts import load_slide_artefacts, read_thumbnail
from immunodig.store import query

BUILD = ("--executor", "debug", "--nuclei-backend", "none", "--quiet")


@pytest.fixture(scope="module")
def slides(tmp_path_factory) -> Path:
    """A small generated slide and a damaged one (fails before it has an id)."""
    from immunodig.synthetic.slide import make_slide

    folder = tmp_path_factory.mktemp("slides") / "MRN123456_smith"
    folder.mkdir()
    make_slide(folder / "MRN123456_smith_HE.tiff", 3, slide_mm=0.6)
    (folder / "MRN123456_smith_broken.svs").write_bytes(b"II*\0" + b"\0" * 2000)
    return folder


def _expected(path: Path, policy: str, store: Path) -> str | None:
    return {"absolute": str(path.resolve()), "none": None,
            "relative": os.path.relpath(path.resolve(), store.parent.resolve())}[policy]


@pytest.mark.parametrize("policy", ["absolute", "relative", "none"])
def test_store_paths_decides_what_is_kept_and_readers_cope(policy, slides, tmp_path, cli,
                                                            monkeypatch, caplog):
    from immunodig.pipeline import slide_job

    store = tmp_path / "project" / "s.duckdb"
    good, broken = slides / "MRN123456_smith_HE.tiff", slides / "MRN123456_smith_broken.svs"

    def crash(*args, **kwargs):
        raise RuntimeError(f"simulated crash reading {good}")

    monkeypatch.setattr(slide_job, "_classify", crash)  # first run: failure.json in the folder
    first = cli("build-features", slides, "--store", store, "--store-paths", policy, *BUILD)
    assert first.code == 1, first.err
    monkeypatch.undo()
    folder = next(p for p in sf.default_work_dir(store).iterdir() if p.name.startswith("s_"))
    failure = json.loads((folder / sf.FAILURE_JSON).read_text())
    assert failure["path"] == _expected(good, policy, store)
    if policy != "absolute":  # the message names the file only in its stored form
        assert str(slides) not in failure["message"]
    assert (policy == "none") == ("MRN123456" not in failure["message"])

    second = cli("build-features", slides, "--store", store, "--store-paths", policy, *BUILD)
    assert second.code == 1, second.err  # the damaged file still fails
    stored = query(store, "select slide_id, path from slides")
    assert stored["path"].to_list() == [_expected(good, policy, store)]
    record = json.loads((folder / sf.SLIDE_JSON).read_text())
    assert record["path"] == _expected(good, policy, store)
    # the damaged file failed before it had an id: its row keeps the path only as allowed
    early = query(store, "select slide_key, path, message from slide_status where slide_id is null")
    assert early.height == 1 and early["path"].to_list() == [_expected(broken, policy, store)]
    if policy == "none":
        assert "MRN123456" not in early["slide_key"][0] + early["message"][0]
    if policy != "absolute":
        assert str(slides) not in early["message"][0]

    # readers: a relative path resolves against the store's folder, not the working folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    art = load_slide_artefacts(folder, store_dir=store.parent)
    if policy == "none":
        assert art.slide_file is None and read_thumbnail(art) is None
    else:
        assert art.slide_file.resolve() == good.resolve()
        assert read_thumbnail(art) is not None
    slide_id = stored["slide_id"][0]
    caplog.clear()
    shown = cli("show", slide_id, "--store", store, "--out-dir", tmp_path / "png")
    assert shown.code == 0, shown.err
    assert (tmp_path / "png" / "overlay_tissue_classes.png").is_file()
    assert "thumbnail not available" not in caplog.text  # the file was found where it was
    report = cli("report", "--store", store, "--out", tmp_path / "r.html")
    assert report.code == 0, report.err
    html = (tmp_path / "r.html").read_text()
    assert slide_id in html and "MRN123456" not in html
    assert ("slide file not available" in html) == (policy == "none")
    assert cli("status", "--store", store).code == 0


def test_unknown_store_paths_is_refused_before_anything(slides, tmp_path, cli):
    store = tmp_path / "s.duckdb"
    result = cli("build-features", slides, "--store", store, "--store-paths", "hashed", *BUILD)
    assert result.code == 2 and "unknown --store-paths 'hashed'" in result.err
    assert not store.exists()
