"""IHC (CD3 / CD8) slides: positive cells counted in the compartments of the patient's H&E map.

The IHC slide's tissue mask is rigidly registered onto the tissue mask of the patient's H&E slide
(a serial section; :func:`immunodig.nuclei.ihc.rigid_register`), the DAB-positive cells are
mapped into the H&E frame and counted in the H&E tile map's compartments
(:func:`immunodig.features.til.ihc_features`). Without an H&E slide for the patient the
compartment densities are undefined (NaN) and only the slide's tissue area is reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from immunodig import slide_folder as sf
from immunodig.config import BuildConfig
from immunodig.io import write_json_atomic, write_parquet_atomic
from immunodig.slides.tissue_mask import TissueMask


def ihc_slide_features(slide, tiles: pl.DataFrame, mask: TissueMask, stain: str,
                       reference_folder: str | None, cfg: BuildConfig,
                       folder: Path) -> tuple[pl.DataFrame, list[str], dict[str, float]]:
    """Detect positive cells, register onto the H&E reference, compute the IHC features.

    Returns the long features table, the names of the extra artefacts written and the QC
    measures ``positive_cells_per_mm2`` and ``registration_overlap_dice`` (NaN unregistered).
    """
    from immunodig.features.slide_features import features_table
    from immunodig.features.til import ihc_features
    from immunodig.nuclei.ihc import detect_positive_slide, rigid_register

    cells = detect_positive_slide(slide, tiles, cfg.tile_size_um, mpp=cfg.nuclei_mpp)
    write_parquet_atomic(folder / sf.IHC_CELLS_PARQUET, cells)
    written = [sf.IHC_CELLS_PARQUET]
    values: dict[str, float] = {"area_tissue_mm2": mask.area_mm2}
    qc = {"positive_cells_per_mm2": cells.height / mask.area_mm2 if mask.area_mm2 > 0
          else float("nan"), "registration_overlap_dice": float("nan")}
    if reference_folder is None:
        nan_features = ihc_features(tiles.head(0), cells.head(0), cfg, stain)
        values.update({k: float("nan") for k in nan_features})
        return features_table(values), written, qc
    ref = Path(reference_folder)
    ref_meta = json.loads((ref / sf.SLIDE_JSON).read_text())
    ref_mask = TissueMask.load_png(ref / sf.MASK_PNG, cfg.mask_mpp)
    transform = rigid_register(ref_mask.mask, mask.mask, cfg.mask_mpp)
    he_tiles = pl.read_parquet(ref / sf.TILES_PARQUET)
    xy = transform.apply(cells.select("x_um", "y_um").to_numpy()) if cells.height else \
        np.zeros((0, 2))
    mapped = pl.DataFrame({"x_um": xy[:, 0], "y_um": xy[:, 1]},
                          schema={"x_um": pl.Float64, "y_um": pl.Float64})
    values.update(ihc_features(he_tiles, mapped, cfg, stain))
    write_json_atomic(folder / sf.REGISTRATION_JSON, {
        "reference_slide_id": ref_meta["slide_id"], "angle_deg": transform.angle_deg,
        "shift_um": list(transform.shift_um), "centre_um": list(transform.centre_um),
        "overlap_dice": transform.overlap_dice, "mask_mpp": cfg.mask_mpp,
    })
    written.append(sf.REGISTRATION_JSON)
    qc["registration_overlap_dice"] = float(transform.overlap_dice)
    return features_table(values), written, qc
