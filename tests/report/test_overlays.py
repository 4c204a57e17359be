"""Per-slide overlays: what is computed lines up with the tables; PNGs written on demand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from immunodig.report.overlays import HE_OVERLAYS, OVERLAY_FILES, write_slide_overlays
from immunodig.report.slide_artefacts import load_slide_artefacts
from immunodig.report.tile_grids import class_overlay_rgba, qc_overlay_rgba, til_density_grid, tile_grid_of
from immunodig.vocab import KATHER_COLOURS
from tests.report.builders import MPP, TILE_PX, write_slide_folder


@pytest.fixture
def folder(tmp_path, slide_file):
    return write_slide_folder(tmp_path / "work", "s_00000000000000ee", "P001", slide_file,
                              {"prop_tumour": 0.4}, seed=7)


def test_grid_and_class_colours(folder):
    art = load_slide_artefacts(folder)
    grid = tile_grid_of(art.tiles)
    assert grid.shape == (8, 8) and grid.extent == (0, 8 * TILE_PX, 8 * TILE_PX, 0)
    img = class_overlay_rgba(art.tiles, grid, alpha=0.5)
    for row in art.tiles.head(20).iter_rows(named=True):
        cell = img[row["y_px"] // TILE_PX, row["x_px"] // TILE_PX]
        if row["pred_class"] is None:
            assert cell[3] == 0
        else:
            assert np.allclose(cell, to_rgba(KATHER_COLOURS[row["pred_class"]], 0.5))


def test_til_density_counts_lymphocytes_per_tissue_area(folder):
    art = load_slide_artefacts(folder)
    grid = tile_grid_of(art.tiles)
    dens = til_density_grid(art.tiles, art.nuclei, grid, MPP)
    tile = art.tiles.filter(pl.col("qc_pass")).row(0, named=True)
    x, y = tile["x_px"], tile["y_px"]
    n = art.nuclei.filter((pl.col("cell_class") == "lymphocyte") & (pl.col("x_px") >= x)
                          & (pl.col("x_px") < x + TILE_PX) & (pl.col("y_px") >= y)
                          & (pl.col("y_px") < y + TILE_PX)).height
    area_mm2 = (TILE_PX * MPP / 1000) ** 2 * tile["tissue_fraction"]
    assert dens[y // TILE_PX, x // TILE_PX] == pytest.approx(n / area_mm2)
    failed = art.tiles.filter(~pl.col("qc_pass")).row(0, named=True)
    assert np.isnan(dens[failed["y_px"] // TILE_PX, failed["x_px"] // TILE_PX])
    _, counts = qc_overlay_rgba(art.tiles, grid)
    expected = art.tiles.filter(~pl.col("qc_pass"))["qc_reason"].value_counts()
    assert counts == dict(zip(expected["qc_reason"], expected["count"])) == {"blur": 4, "pen": 2}


def test_write_overlays_beside_the_slide(folder):
    written = write_slide_overlays(folder)
    assert set(written) == set(HE_OVERLAYS)
    for kind, path in written.items():
        assert path == folder / OVERLAY_FILES[kind]
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 300


def test_missing_nuclei_and_missing_slide_file_degrade(tmp_path):
    folder = write_slide_folder(tmp_path / "w", "s_00000000000000dd", None,
                                tmp_path / "moved.svs", {"prop_tumour": 0.1}, seed=1,
                                nuclei=False)
    written = write_slide_overlays(folder, out_dir=tmp_path / "png")
    assert str(written["til_density"]).startswith("not available:")
    assert "nuclei" in written["til_density"]
    assert (tmp_path / "png" / OVERLAY_FILES["classes"]).is_file()
