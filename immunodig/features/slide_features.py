"""All slide-level features of one slide, as the long table written to ``features.parquet``."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from immunodig.config import BuildConfig
from immunodig.errors import UndeclaredFeatureError
from immunodig.features.catalog import catalog
from immunodig.features.composition import composition_features
from immunodig.features.margin import compartments, margin_features
from immunodig.features.spatial import spatial_features
from immunodig.features.structures import structure_features
from immunodig.features.tilemap import NUCLEI_COLUMNS, TileMap, check_columns

#: Schema of the returned table (the ``features.parquet`` contract).
FEATURES_SCHEMA: dict[str, pl.DataType] = {
    "feature": pl.String,
    "value": pl.Float64,
    "feature_version": pl.Int32,
}



def compute_slide_features(
    tiles: pl.DataFrame,
    nuclei: pl.DataFrame | None,
    tissue_area_mm2: float,
    cfg: BuildConfig,
    structures: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Compute every slide feature whose inputs are available.

    Parameters
    ----------
    tiles : polars.DataFrame
        The slide's ``tiles.parquet`` (see docs/architecture.md).
    nuclei : polars.DataFrame or None
        The slide's ``nuclei.parquet``; ``None`` when the nuclei stage did not run, in which case
        nuclei-stage features are omitted (not written as NaN).
    tissue_area_mm2 : float
        Tissue area from the tissue mask.
    cfg : BuildConfig
        Build parameters (tile size, margin width, ``extra`` thresholds).
    structures : polars.DataFrame or None
        The slide's ``structures.parquet`` (``--structure-model``); ``None`` omits its features.

    Returns
    -------
    polars.DataFrame
        Long table ``feature (str), value (float64, NaN = undefined), feature_version (int32)``,
        one row per feature.

    Raises
    ------
    ValidationError
        If a required column of ``tiles`` or ``nuclei`` is missing.
    UndeclaredFeatureError
        If a computed feature is undeclared or infinite (a programming error).
    """
    tmap = TileMap.from_tiles(tiles, cfg.tile_size_um)
    comp = compartments(tmap, cfg.margin_um)
    points = None
    if nuclei is not None:
        check_columns(nuclei, NUCLEI_COLUMNS, "nuclei table")
        points = nucleus_points(nuclei)
    values: dict[str, float] = {}
    values.update(composition_features(tmap, tissue_area_mm2, cfg))
    values.update(margin_features(tmap, comp, None if points is None else points["lymphocyte"]))
    values.update(structure_features(tmap, comp, cfg))
    values.update(spatial_features(tmap, comp, points, cfg))
    if nuclei is not None:
        from immunodig.features.til import til_features

        values.update(til_features(tiles, nuclei, cfg))
    if structures is not None:
        from immunodig.features.segmented_structures import segmented_structure_features

        values.update(segmented_structure_features(structures, tmap, comp, tissue_area_mm2))
    return features_table(values)


def nucleus_points(nuclei: pl.DataFrame) -> dict[str, np.ndarray]:
    """Centroids (N, 2) in µm of lymphocytes, tumour nuclei and all epithelial nuclei.

    Tumour nuclei are ``epithelial`` nuclei whose ``tissue_class`` is TUM.
    """
    cell = nuclei["cell_class"].fill_null("")
    epithelial = (cell == "epithelial").to_numpy()
    groups = {
        "lymphocyte": (cell == "lymphocyte").to_numpy(),
        "tumour": epithelial & (nuclei["tissue_class"].fill_null("") == "TUM").to_numpy(),
        "epithelial": epithelial,
    }
    xy = np.column_stack([
        nuclei["x_um"].cast(pl.Float64).to_numpy(), nuclei["y_um"].cast(pl.Float64).to_numpy()
    ]).reshape(-1, 2)
    finite = np.isfinite(xy).all(axis=1)
    return {name: xy[mask & finite] for name, mask in groups.items()}


def features_table(values: dict[str, float]) -> pl.DataFrame:
    """Turn ``{feature: value}`` into the long features table, checking every name is declared."""
    specs = catalog()
    undeclared = sorted(set(values) - set(specs))
    if undeclared:
        raise UndeclaredFeatureError(
            f"features computed but not declared in the catalogue: {undeclared}; "
            "declare them with immunodig.features.catalog.register in a *_specs module"
        )
    names = list(values)
    vals = [float(values[n]) if values[n] is not None else math.nan for n in names]
    infinite = [n for n, v in zip(names, vals) if math.isinf(v)]
    if infinite:
        raise UndeclaredFeatureError(
            f"features {infinite} are infinite; an undefined value must be NaN (a bug: report it)"
        )
    return pl.DataFrame(
        {
            "feature": names,
            "value": vals,
            "feature_version": [specs[n].version for n in names],
        },
        schema=FEATURES_SCHEMA,
    )
