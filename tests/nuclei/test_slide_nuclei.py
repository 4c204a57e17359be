"""Whole-slide nuclei: overlap + de-duplication at tile/block borders, streamed Parquet schema."""

import numpy as np
import polars as pl
import pytest

from immunodig.config import BuildConfig
from immunodig.nuclei.classical import ClassicalSegmenter
from immunodig.nuclei.rule_classifier import RuleCellClassifier
from immunodig.nuclei.slide_nuclei import NUCLEI_SCHEMA_COLUMNS, segment_slide
from tests.nuclei.conftest import ArraySlide, draw_nuclei

MPP = 0.5
CFG = BuildConfig(target_mpp=MPP, tile_size_px=64, nuclei_mpp=MPP, cell_classifier="rule")  # tiles of 32 µm


def tiles_table(n_rows: int, n_cols: int, classes=None, failed=()) -> pl.DataFrame:
    t = CFG.tile_size_um
    rows = []
    for r in range(n_rows):
        for c in range(n_cols):
            cls = classes[r][c] if classes else "TUM"
            ok = (r, c) not in failed
            rows.append({"x_um": c * t, "y_um": r * t, "qc_pass": ok, "pred_class": cls if ok else None})
    return pl.DataFrame(rows)


@pytest.mark.parametrize("block_tiles", [1, 2])
def test_nucleus_on_tile_border_counted_once_and_whole(tmp_path, block_tiles):
    # 4 x 4 tiles of 64 px; nuclei of radius 8 px (4 µm) centred ON tile borders and corners
    centres = [(64, 30), (128, 128), (30, 192), (100, 100), (192, 64)]
    slide = ArraySlide(draw_nuclei((256, 256), centres, radius_px=8), MPP)
    n = segment_slide(
        slide,
        tiles_table(4, 4),
        CFG,
        tmp_path / "nuclei.parquet",
        segmenter=ClassicalSegmenter(),
        classifier=RuleCellClassifier(),
        overlap_um=12,
        block_tiles=block_tiles,
    )
    table = pl.read_parquet(tmp_path / "nuclei.parquet")
    assert n == table.height == len(centres)
    got = np.sort(table["x_um"].to_numpy() + 1000 * table["y_um"].to_numpy())
    want = np.sort(np.array([x for x, _ in centres]) * MPP + 1000 * np.array([y for _, y in centres]) * MPP)
    np.testing.assert_allclose(got, want, atol=0.6)
    # whole, not cut: area of a radius-4 µm disc
    np.testing.assert_allclose(table["area_um2"].to_numpy(), np.pi * 16, rtol=0.1)
    assert table.columns == list(NUCLEI_SCHEMA_COLUMNS)
    assert set(table["tissue_class"]) == {"TUM"}


def test_only_qc_passed_tiles_and_tissue_class(tmp_path):
    centres = [(32, 32), (96, 32)]  # one nucleus in tile (0,0), one in tile (0,1)
    slide = ArraySlide(draw_nuclei((64, 128), centres, radius_px=8), MPP)
    classes = [["STR", "TUM"]]
    segment_slide(slide, tiles_table(1, 2, classes), CFG, tmp_path / "a.parquet", segmenter=ClassicalSegmenter())
    t = pl.read_parquet(tmp_path / "a.parquet").sort("x_um")
    assert t["tissue_class"].to_list() == ["STR", "TUM"]
    segment_slide(
        slide, tiles_table(1, 2, classes, failed={(0, 0)}), CFG, tmp_path / "b.parquet", segmenter=ClassicalSegmenter()
    )
    assert pl.read_parquet(tmp_path / "b.parquet")["tissue_class"].to_list() == ["TUM"]


def test_no_nuclei_writes_empty_table_with_schema(tmp_path):
    slide = ArraySlide(np.full((64, 64, 3), 235, np.uint8), MPP)
    n = segment_slide(slide, tiles_table(2, 2), CFG, tmp_path / "n.parquet", segmenter=ClassicalSegmenter())
    t = pl.read_parquet(tmp_path / "n.parquet")
    assert n == 0 and t.height == 0 and t.columns == list(NUCLEI_SCHEMA_COLUMNS)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("block_tiles", [1, 2, 4])
def test_edge_strip_nuclei_belong_to_the_edge_tile(tmp_path, block_tiles):
    """2 x 2 whole tiles of 64 px and a 40 px strip right and below: the tiling drops the strip,
    the nuclei stage keeps its nuclei in the adjacent edge tile (once each)."""
    centres = [(32, 32), (150, 40), (40, 150), (150, 150), (100, 30)]
    slide = ArraySlide(draw_nuclei((168, 168), centres, radius_px=8), MPP)
    classes = [["STR", "TUM"], ["NORM", "LYM"]]
    segment_slide(
        slide,
        tiles_table(2, 2, classes),
        CFG,
        tmp_path / "e.parquet",
        segmenter=ClassicalSegmenter(),
        overlap_um=12,
        block_tiles=block_tiles,
    )
    t = pl.read_parquet(tmp_path / "e.parquet").sort("y_um", "x_um")
    want = np.array(sorted(centres, key=lambda c: (c[1], c[0]))) * MPP
    np.testing.assert_allclose(t.select("x_um", "y_um").to_numpy(), want, atol=0.6)
    assert t["tissue_class"].to_list() == ["TUM", "STR", "TUM", "NORM", "LYM"]
    # the strip follows its edge tile's QC
    segment_slide(
        slide,
        tiles_table(2, 2, classes, failed={(0, 1)}),
        CFG,
        tmp_path / "f.parquet",
        segmenter=ClassicalSegmenter(),
        overlap_um=12,
        block_tiles=block_tiles,
    )
    assert sorted(pl.read_parquet(tmp_path / "f.parquet")["tissue_class"].to_list()) == ["LYM", "NORM", "STR"]
