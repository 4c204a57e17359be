"""build-features --embeddings: per-slide artefacts, the store table, resume and the encoder in the
result key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from immunodig import slide_folder as sf
from immunodig.config import BuildConfig
from immunodig.embeddings import read_embedding_record, read_slide_embeddings
from immunodig.embeddings.slide_embeddings import embedded_rows
from immunodig.pipeline.build import build_features
from immunodig.store import query

CFG = BuildConfig(nuclei_backend=None, embeddings=True)
#: The bag query of docs/embeddings.md: one encoder, each slide's latest finished run.
BAGS_SQL = """
select s.patient_id, e.slide_id, e.file
from slide_embeddings e
join slides s using (slide_id)
join slide_status st on st.slide_id = e.slide_id and st.run_id = e.run_id and st.status = 'done'
where s.stain = 'HE' and e.encoder_sha256 = $encoder_sha256
qualify row_number() over (partition by e.slide_id order by st.finished_at desc) = 1
order by s.patient_id, e.slide_id
"""


@pytest.fixture(scope="module")
def slide(tmp_path_factory) -> Path:
    """One small generated H&E slide."""
    from immunodig.synthetic.slide import make_slide

    folder = tmp_path_factory.mktemp("emb_slide")
    make_slide(folder / "a.tiff", 3, slide_mm=0.8)
    return folder / "a.tiff"


@pytest.fixture(scope="module")
def built(slide, tmp_path_factory):
    store = tmp_path_factory.mktemp("emb_store") / "s.duckdb"
    summary = build_features([slide], store, CFG, show_progress=False, executor="debug")
    assert summary.ok, summary.failed
    return store, summary


def test_artefacts_have_one_embedding_per_qc_passing_tissue_tile(built):
    store, summary = built
    folder = Path(summary.outcomes[0].folder)
    tiles, emb = read_slide_embeddings(folder)
    grid = sf.read_tiles(folder)
    expected = grid[embedded_rows(grid)]
    assert 0 < tiles.height == len(expected) == emb.shape[0]
    assert emb.dtype == np.float32 and emb.shape[1] == 64 and np.isfinite(emb).all()
    assert np.load(folder / sf.EMBEDDINGS_NPY, mmap_mode="r").dtype == np.float16
    assert tiles.columns == ["col", "row", "x_um", "y_um", "tile_um", "tissue_class"]
    assert tiles["col"].to_list() == expected["col"].to_list()
    assert tiles["tissue_class"].to_list() == expected["pred_class"].to_list()
    assert tiles["tile_um"].unique().to_list() == pytest.approx([112.0], rel=0.02)
    manifest = sf.read_manifest(folder)
    assert {sf.EMBEDDINGS_NPY, sf.EMBEDDING_TILES_PARQUET} <= set(manifest["files"])
    assert read_embedding_record(folder)["encoder_sha256"] == manifest["model_hashes"]["encoder"]


def test_store_table_names_the_file_and_its_hash(built):
    store, summary = built
    folder = Path(summary.outcomes[0].folder)
    rows = query(store, "select * from slide_embeddings")
    assert rows.height == 1
    row = rows.row(0, named=True)
    manifest = sf.read_manifest(folder)
    assert row["slide_id"] == summary.outcomes[0].slide_id and row["run_id"] == summary.run_id
    assert row["file"] == str((folder / sf.EMBEDDINGS_NPY).resolve())
    assert row["sha256"] == manifest["files"][sf.EMBEDDINGS_NPY]
    assert row["encoder_sha256"] == manifest["model_hashes"]["encoder"]
    assert (row["dim"], row["n_tiles"]) == (64, read_slide_embeddings(folder)[1].shape[0])
    assert row["encoder"] == "immunodig-kather9-smallcnn"


def _cli(monkeypatch, *args) -> int:
    """Exit code of ``cli.py ARGS`` run in-process as a user runs it."""
    import sys

    from immunodig.cli.app import main

    monkeypatch.setattr(sys, "argv", ["cli.py", *map(str, args)])
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return 0


def test_rerun_skips_and_another_encoder_recomputes(built, slide, tmp_path, monkeypatch):
    store, first = built
    again = build_features([slide], store, CFG, show_progress=False, executor="debug")
    assert [o.status for o in again.outcomes] == ["skipped"] and again.run_id == first.run_id

    import timm
    import torch

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, depth=2)
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    (tmp_path / "vit.pth.json").write_text('{"name": "tiny-vit", "model_kwargs": {"depth": 2}, "input_mpp": 1.0}')
    code = _cli(monkeypatch, "build-features", slide, "--store", store, "--nuclei-backend", "none", "--embeddings",
                "--encoder", tmp_path / "vit.pth", "--encoder-arch", "vit_tiny_patch16_224", "--executor", "debug",
                "--quiet")
    assert code == 0
    rows = query(store, "select encoder, dim, run_id, file from slide_embeddings order by dim")
    assert rows["encoder"].to_list() == ["immunodig-kather9-smallcnn", "tiny-vit"]
    other_run = rows["run_id"][1]
    assert rows["run_id"][0] == first.run_id != other_run
    manifest = sf.read_manifest(Path(rows["file"][1]).parent)
    assert manifest["run_id"] == other_run and manifest["config"]["encoder_arch"] == "vit_tiny_patch16_224"
    tiles, emb = read_slide_embeddings(Path(rows["file"][1]).parent)
    assert emb.shape == (tiles.height, 192)  # 224 µm field of view centred on each 112 µm grid tile
    for encoder_sha256, file in query(store, "select encoder_sha256, file from slide_embeddings").iter_rows():
        bags = query(store, BAGS_SQL, {"encoder_sha256": encoder_sha256})  # the query of docs/embeddings.md
        assert bags["file"].to_list() == [file]


def test_an_encoder_that_does_not_fit_is_refused_before_anything(slide, tmp_path, monkeypatch):
    import torch

    torch.save({"fc.weight": torch.zeros(2, 8)}, tmp_path / "bad.pth")
    store = tmp_path / "s.duckdb"
    code = _cli(monkeypatch, "build-features", slide, "--store", store, "--nuclei-backend", "none", "--embeddings",
                "--encoder", tmp_path / "bad.pth", "--encoder-arch", "resnet18", "--quiet")
    assert code == 2 and not store.exists()


def test_builds_without_embeddings_keep_their_run_key():
    off = BuildConfig(nuclei_backend=None)
    assert off.config_hash() == off.with_(encoder_arch="x", encoder="y").config_hash()
    assert CFG.config_hash() != off.config_hash()


def test_reader_refuses_embeddings_that_disagree_with_their_tiles(built, tmp_path):
    import shutil

    from immunodig.errors import SlideArtefactError

    folder = tmp_path / "copy"
    shutil.copytree(built[1].outcomes[0].folder, folder)
    tiles, emb = read_slide_embeddings(folder)
    np.save(folder / sf.EMBEDDINGS_NPY, emb[:-1].astype(np.float16))
    with pytest.raises(SlideArtefactError, match="rows"):
        read_slide_embeddings(folder)
    (folder / sf.EMBEDDING_TILES_PARQUET).unlink()
    with pytest.raises(SlideArtefactError, match="--embeddings"):
        read_slide_embeddings(folder)


def test_tiles_are_read_centred_on_the_grid_tile(built, slide):
    from immunodig.embeddings.slide_embeddings import _CentredTiles
    from immunodig.slides import Slide

    grid = sf.read_tiles(Path(built[1].outcomes[0].folder)).head(3)
    cx = grid["x_px"].to_numpy() + 0.5 * grid["w_px"].to_numpy()
    cy = grid["y_px"].to_numpy() + 0.5 * grid["h_px"].to_numpy()
    same = _CentredTiles(str(slide), None, cx, cy, 224, 0.5)
    wide = _CentredTiles(str(slide), None, cx, cy, 224, 1.0)
    with Slide(slide) as s:
        for i, (x, y, w) in enumerate(grid.select("x_px", "y_px", "w_px").iter_rows()):
            np.testing.assert_array_equal(same[i].numpy(), s.read(x, y, (224, 224), 0.5))
            np.testing.assert_array_equal(wide[i].numpy(), s.read(x - w / 2, y - w / 2, (224, 224), 1.0))
