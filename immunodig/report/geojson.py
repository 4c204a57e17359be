"""Tiles, compartments, nuclei and IHC cells of one slide as a QuPath-importable GeoJSON
FeatureCollection.

Geometry is in level-0 pixels (QuPath's image coordinates). Each feature carries
``properties.objectType`` (``"tile"`` for grid tiles, ``"annotation"`` for the compartments, TLS
and tumour buds of :mod:`immunodig.report.regions`, ``"detection"`` for nuclei and DAB-positive
IHC cells),
``properties.classification`` ``{"name", "color": [r, g, b]}`` and ``properties.measurements``
``{name: number}`` holding finite numbers only (undefined values are left out, never NaN).
The file is written one feature at a time, so slides with millions of nuclei fit in memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from immunodig import slide_folder as sf
from immunodig.vocab import KATHER_COLOURS

#: Fixed colours (RGB hex) of the nucleus classes (immunodig.vocab.CELL_CLASSES) in exports.
CELL_COLOURS: dict[str, str] = {
    "lymphocyte": "#1f3fbf",
    "epithelial": "#9467bd",
    "fibroblast": "#ff7f0e",
    "other": "#7f7f7f",
}
#: Colour of DAB-positive IHC cells (class ``"<stain> positive"``, e.g. ``CD3 positive``).
IHC_CELL_COLOUR = "#8b4513"
#: Class name of tiles excluded by quality control.
QC_EXCLUDED = "QC excluded"
#: Tile columns never exported as measurements (geometry or labels).
_TILE_SKIP = {"x_px", "y_px", "w_px", "h_px", "pred_class", "qc_reason", "row", "col"}
_NUCLEUS_SKIP = {"x_px", "y_px", "cell_class", "tissue_class"}
#: Class of the region of interest exported with segmented structures (QuPath's region class), so
#: that an export read back by train-segmenter counts unannotated tissue as background.
STRUCTURE_ROI_CLASS = "Region*"
#: Measurements of a segmented structure carried into its annotation.
STRUCTURE_MEASUREMENTS: tuple[str, ...] = ("area_um2", "perimeter_um", "probability")


def rgb_list(hex_colour: str) -> list[int]:
    """``"#1f3fbf"`` -> ``[31, 63, 191]``."""
    h = hex_colour.lstrip("#")
    return [int(h[i:i + 2], 16) for i in (0, 2, 4)]


def _measurements(row: dict, columns: list[str]) -> dict[str, float]:
    out = {}
    for c in columns:
        v = row[c]
        if isinstance(v, bool):
            out[c] = int(v)
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out[c] = v
    return out


def _numeric_columns(frame: pl.DataFrame, skip: set[str]) -> list[str]:
    return [c for c, t in frame.schema.items()
            if c not in skip and (t.is_numeric() or t == pl.Boolean)]


def tile_features(tiles: pl.DataFrame) -> Iterator[dict]:
    """One polygon feature per tile: its level-0 rectangle, class = predicted class (or
    ``QC excluded``), measurements = the numeric tile columns (probabilities, QC values)."""
    columns = _numeric_columns(tiles, _TILE_SKIP)
    for row in tiles.iter_rows(named=True):
        x, y, w, h = (float(row[k]) for k in ("x_px", "y_px", "w_px", "h_px"))
        ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
        props: dict = {"objectType": "tile"}
        name = row.get("pred_class")
        if row.get("qc_pass") is False:
            name = QC_EXCLUDED
        if name in KATHER_COLOURS:
            props["classification"] = {"name": name, "color": rgb_list(KATHER_COLOURS[name])}
        elif name == QC_EXCLUDED:
            props["classification"] = {"name": name, "color": [127, 127, 127]}
        props["measurements"] = _measurements(row, columns)
        yield {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
               "properties": props}


def nucleus_polygon(x: float, y: float, radius_px: float, n: int = 8) -> list[list[float]]:
    """A closed regular ``n``-gon ring centred on ``(x, y)`` (its vertex mean is the centre)."""
    angles = np.arange(n) * 2 * np.pi / n
    ring = [[x + radius_px * float(np.cos(a)), y + radius_px * float(np.sin(a))] for a in angles]
    return ring + [ring[0]]


def nucleus_features(nuclei: pl.DataFrame, mpp: float, shape: str = "polygon",
                     colours: dict[str, str] | None = None) -> Iterator[dict]:
    """One detection per nucleus at its level-0 centroid.

    Parameters
    ----------
    nuclei : polars.DataFrame
        ``nuclei.parquet``.
    mpp : float
        Level-0 microns per pixel (turns ``area_um2`` into a radius in pixels).
    shape : {"polygon", "point"}
        An octagon of the nucleus' equivalent-area radius (QuPath draws and measures it like a
        cell), or a bare point.
    colours : dict, optional
        Class name -> colour (default :data:`CELL_COLOURS`).
    """
    colours = CELL_COLOURS if colours is None else colours
    columns = _numeric_columns(nuclei, _NUCLEUS_SKIP)
    has_area = "area_um2" in nuclei.columns
    for row in nuclei.iter_rows(named=True):
        x, y = float(row["x_px"]), float(row["y_px"])
        if shape == "point":
            geometry = {"type": "Point", "coordinates": [x, y]}
        else:
            area = row["area_um2"] if has_area else None
            r_um = math.sqrt(area / math.pi) if area and math.isfinite(area) and area > 0 else 3.0
            geometry = {"type": "Polygon", "coordinates": [nucleus_polygon(x, y, r_um / mpp)]}
        props: dict = {"objectType": "detection"}
        name = row.get("cell_class")
        if name in colours:
            props["classification"] = {"name": name, "color": rgb_list(colours[name])}
        props["measurements"] = _measurements(row, columns)
        yield {"type": "Feature", "geometry": geometry, "properties": props}


def region_features(regions) -> Iterator[dict]:
    """One annotation per compartment (:class:`immunodig.report.regions.Region`): a valid
    (Multi)Polygon with exterior rings counter-clockwise, its class and measurements."""
    from shapely.geometry import mapping
    from shapely.geometry.polygon import orient

    from immunodig.report.regions import REGION_COLOURS

    for region in regions:
        geom = region.geometry
        parts = [orient(p, 1.0) for p in getattr(geom, "geoms", [geom])]
        shape = mapping(parts[0] if len(parts) == 1 else type(geom)(parts))
        props = {"objectType": "annotation",
                 "classification": {"name": region.name,
                                    "color": rgb_list(REGION_COLOURS[region.name])},
                 "measurements": _measurements(region.measurements, list(region.measurements))}
        yield {"type": "Feature", "geometry": shape, "properties": props}


def _oriented_mapping(geom) -> dict:
    from shapely.geometry import mapping
    from shapely.geometry.polygon import orient

    parts = [orient(p, 1.0) for p in getattr(geom, "geoms", [geom])]
    return mapping(parts[0] if len(parts) == 1 else type(geom)(parts))


def structure_colour(name: str) -> list[int]:
    """A fixed colour per structure class name (from its hash)."""
    import hashlib

    h = hashlib.sha256(name.encode()).digest()
    return [64 + h[0] % 160, 64 + h[1] % 160, 64 + h[2] % 160]


def structure_features(structures: pl.DataFrame) -> Iterator[dict]:
    """One annotation per segmented structure of ``structures.parquet`` (level-0 polygon, class,
    :data:`STRUCTURE_MEASUREMENTS`)."""
    from shapely import from_wkb

    for row in structures.iter_rows(named=True):
        props = {"objectType": "annotation",
                 "classification": {"name": row["class"], "color": structure_colour(row["class"])},
                 "measurements": _measurements(row, list(STRUCTURE_MEASUREMENTS))}
        yield {"type": "Feature", "geometry": _oriented_mapping(from_wkb(row["geometry_wkb"])), "properties": props}


def structure_roi_feature(mask: np.ndarray, mask_mpp: float, slide_mpp: float) -> dict | None:
    """The tissue mask as one :data:`STRUCTURE_ROI_CLASS` annotation in level-0 pixels (``None``
    without tissue): where the structure segmenter looked."""
    from immunodig.structures.rasterise import Grid
    from immunodig.structures.vectorise import mask_polygon, to_level0

    geom = mask_polygon(np.asarray(mask, bool))
    if geom is None:
        return None
    geom = to_level0(geom, Grid((0.0, 0.0), slide_mpp / mask_mpp, mask.shape))
    return {"type": "Feature", "geometry": _oriented_mapping(geom),
            "properties": {"objectType": "annotation",
                           "classification": {"name": STRUCTURE_ROI_CLASS, "color": [255, 200, 0]}}}


def ihc_cell_features(cells: pl.DataFrame, mpp: float, stain: str,
                      shape: str = "polygon") -> Iterator[dict]:
    """One detection per DAB-positive cell of ``ihc_cells.parquet`` (IHC frame, µm -> level-0
    px), class ``"<stain> positive"``, measurements ``area_um2`` and ``dab_od_mean``."""
    px = cells.with_columns((pl.col("x_um") / mpp).alias("x_px"), (pl.col("y_um") / mpp).alias("y_px"),
                            pl.lit(f"{stain} positive").alias("cell_class")).drop("x_um", "y_um")
    yield from nucleus_features(px, mpp, shape, {f"{stain} positive": IHC_CELL_COLOUR})


def write_geojson(features: Iterator[dict], path: str | Path) -> int:
    """Stream features into a FeatureCollection file atomically; returns the feature count.

    Raises ``ValueError`` if any value is NaN or infinite (``allow_nan=False``).
    """
    from immunodig.io import atomic_path

    n = 0
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write('{"type": "FeatureCollection", "features": [\n')
        for feature in features:
            fh.write((",\n" if n else "") + json.dumps(feature, allow_nan=False,
                                                      separators=(",", ":")))
            n += 1
        fh.write("\n]}\n")
    return n


def export_slide_geojson(folder: str | Path, out: str | Path, tiles: bool = True,
                         nuclei: bool = True, nucleus_shape: str = "polygon",
                         annotations: bool = True, structures: bool = True,
                         tile_measurements: pl.DataFrame | None = None) -> dict[str, int]:
    """Write what a slide's folder holds as one GeoJSON file: tiles, compartment annotations,
    nuclei (H&E) or DAB-positive cells (IHC, in the IHC slide's own frame).

    Parameters
    ----------
    folder : path
        The slide's per-slide folder (``slide.json``, ``tiles.parquet``, ``nuclei.parquet``).
    out : path
        Destination ``.geojson``.
    tiles, nuclei, annotations, structures : bool
        What to include (``nuclei`` also governs IHC cells; ``structures``: the segmented
        structures of ``structures.parquet`` with the tissue as a ``Region*`` annotation, which
        read back, e.g. after editing in QuPath, are training data for ``train-segmenter``).
    nucleus_shape : {"polygon", "point"}
    tile_measurements : polars.DataFrame, optional
        Extra per-tile measurements keyed by ``col, row`` (e.g. a MIL run's attention, from
        :func:`immunodig.report.attention.attention_measurements`); tiles without a row get none.

    Returns
    -------
    dict
        ``{"tiles": n, "annotations": n, "detections": n}`` written.
    """
    from immunodig.report.regions import slide_regions
    from immunodig.report.slide_artefacts import load_slide_artefacts

    # Compartment measurements (lymphocytes) and tumour buds need the nuclei even unexported.
    art = load_slide_artefacts(folder, with_nuclei=nuclei or annotations)
    counts = {"tiles": 0, "annotations": 0, "detections": 0}
    parts: list[tuple[str, Iterator[dict]]] = []
    if tiles and art.tiles is not None:
        table = art.tiles
        if tile_measurements is not None:
            table = table.join(tile_measurements, on=["col", "row"], how="left")
        parts.append(("tiles", tile_features(table)))
    if annotations:
        parts.append(("annotations", region_features(slide_regions(art))))
    structures_path = Path(folder) / sf.STRUCTURES_PARQUET
    if structures and structures_path.is_file():
        roi = structure_roi_feature(art.mask, art.mask_mpp, art.mpp) if art.mask is not None and art.mask_mpp \
            else None
        parts.append(("annotations", iter([roi] if roi else [])))
        parts.append(("annotations", structure_features(pl.read_parquet(structures_path))))
    if nuclei and art.nuclei is not None:
        parts.append(("detections", nucleus_features(art.nuclei, art.mpp, nucleus_shape)))
    if nuclei and art.ihc_cells is not None:
        parts.append(("detections", ihc_cell_features(art.ihc_cells, art.mpp, art.stain,
                                                      nucleus_shape)))

    def features() -> Iterator[dict]:
        for kind, part in parts:
            for f in part:
                counts[kind] += 1
                yield f

    write_geojson(features(), out)
    return counts
