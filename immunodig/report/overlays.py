"""Per-slide pictures over the thumbnail: tissue classes, TIL density, compartments, tissue mask
and QC exclusions (H&E); DAB-positive cell density and the registration onto the H&E slide (IHC).

Everything is drawn in level-0 pixel coordinates (the thumbnail is stretched over the slide's
full extent), so tiles (``x_px, y_px, w_px, h_px``), nuclei (``x_px, y_px``) and the mask (which
covers the slide from its top-left corner at ``mask_mpp``) line up without resampling by hand.
Colours of the Kather classes are the fixed ones of :data:`immunodig.vocab.KATHER_COLOURS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from immunodig.errors import SlideArtefactError
from immunodig.report.figures import axes_or_new, new_figure, png_bytes
from immunodig.report.slide_artefacts import SlideArtefacts, load_slide_artefacts, read_thumbnail
from immunodig.report.tile_grids import (
    QC_COLOURS,
    cell_density_grid,
    class_overlay_rgba,
    qc_overlay_rgba,
    rgba,
    til_density_grid,
    tile_grid_of,
)
from immunodig.vocab import KATHER_CLASSES, KATHER_COLOURS, KATHER_NAMES

#: File names written beside a slide's other outputs by :func:`write_slide_overlays`.
OVERLAY_FILES: dict[str, str] = {
    "classes": "overlay_tissue_classes.png",
    "til_density": "overlay_til_density.png",
    "compartments": "overlay_compartments.png",
    "positive_density": "overlay_positive_cells_density.png",
    "registration": "overlay_registration.png",
    "mask": "overlay_tissue_mask.png",
    "qc": "overlay_qc_excluded.png",
}
#: Overlays drawn for H&E slides and for IHC slides (tiles not classified, no nuclei).
HE_OVERLAYS: tuple[str, ...] = ("classes", "til_density", "compartments", "mask", "qc")
IHC_OVERLAYS: tuple[str, ...] = ("positive_density", "registration", "mask", "qc")
#: File of the MIL attention overlay (``show --attention``).
ATTENTION_PNG = "attention.png"
#: Colour map of cell densities (TIL and IHC-positive), lighter = fewer.
DENSITY_CMAP = "magma_r"


def overlay_kinds(art: SlideArtefacts) -> tuple[str, ...]:
    """The overlays that make sense for the slide's stain."""
    return HE_OVERLAYS if art.stain == "HE" else IHC_OVERLAYS



def _base(art: SlideArtefacts, thumb: np.ndarray | None, ax):
    """Draw the thumbnail (or a blank slide) over the level-0 extent; returns the Axes."""
    w, h = art.size_px
    if thumb is None:
        ax.imshow(np.full((8, 8, 3), 235, np.uint8), extent=(0, w, h, 0))
        ax.text(0.5, 0.02, "slide file not available: blank background", transform=ax.transAxes,
                ha="center", va="bottom", fontsize=7, color="dimgrey")
    else:
        ax.imshow(thumb, extent=(0, w, h, 0), interpolation="bilinear")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    _scale_bar(ax, art)
    return ax


def _scale_bar(ax, art: SlideArtefacts) -> None:
    """A 1 mm (or 100 µm on small slides) bar in the bottom-left corner."""
    w, h = art.size_px
    length_um = 1000.0 if w * art.mpp >= 3000 else 100.0
    length_px = length_um / art.mpp
    x, y = 0.04 * w, 0.96 * h
    ax.plot([x, x + length_px], [y, y], color="black", linewidth=3, solid_capstyle="butt")
    ax.text(x + length_px / 2, y - 0.015 * h, "1 mm" if length_um == 1000 else "100 µm",
            ha="center", va="bottom", fontsize=7)


def plot_class_overlay(art: SlideArtefacts, thumb: np.ndarray | None = None, ax=None,
                       alpha: float = 0.5, legend: bool = True):
    """Thumbnail with the tile class map overlaid and a legend of the classes present."""
    from matplotlib.patches import Patch

    ax = _base(art, thumb, axes_or_new(ax, (6, 6)))
    if art.tiles is None or art.tiles.height == 0:
        raise SlideArtefactError(f"slide {art.slide_id}: no tiles.parquet; rebuild the slide")
    grid = tile_grid_of(art.tiles)
    ax.imshow(class_overlay_rgba(art.tiles, grid, alpha), extent=grid.extent,
              interpolation="nearest")
    if legend:
        present = set(art.tiles["pred_class"].drop_nulls().to_list())
        handles = [Patch(facecolor=KATHER_COLOURS[c], edgecolor="black", linewidth=0.3,
                         label=f"{c} ({KATHER_NAMES[c]})") for c in KATHER_CLASSES if c in present]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                  frameon=False, title="tissue class", title_fontsize=8)
    ax.set_title(f"{art.slide_id}: tissue classes", fontsize=9)
    return ax


def density_vmax(dens: np.ndarray) -> float:
    """Top of a density colour scale: the 99th percentile of the finite values (1 when none)."""
    finite = dens[np.isfinite(dens)]
    return max(float(np.quantile(finite, 0.99)), 1e-9) if finite.size else 1.0


def _density(art: SlideArtefacts, thumb, ax, dens: np.ndarray, grid, vmax: float | None,
             alpha: float, label: str, title: str):
    ax = _base(art, thumb, ax)
    im = ax.imshow(np.ma.masked_invalid(dens), extent=grid.extent, interpolation="nearest",
                   cmap=DENSITY_CMAP, vmin=0, vmax=density_vmax(dens) if vmax is None else vmax,
                   alpha=alpha)
    ax.figure.colorbar(im, ax=ax, shrink=0.6, label=label)
    ax.set_title(f"{art.slide_id}: {title}", fontsize=9)
    return ax


def til_grid(art: SlideArtefacts):
    """The tile grid and lymphocytes per mm² per tile of an H&E slide (raises when absent)."""
    if art.stain != "HE":
        raise SlideArtefactError(f"slide {art.slide_id} is {art.stain}: its lymphocytes are the "
                                 "DAB-positive cells (overlay positive_density)")
    if art.tiles is None or art.nuclei is None:
        raise SlideArtefactError(f"slide {art.slide_id}: TIL density needs tiles.parquet and "
                                 "nuclei.parquet; build with a nuclei backend")
    grid = tile_grid_of(art.tiles)
    return grid, til_density_grid(art.tiles, art.nuclei, grid, art.mpp)


def positive_grid(art: SlideArtefacts):
    """The tile grid and DAB-positive cells per mm² per tile of an IHC slide."""
    if art.tiles is None or art.tiles.height == 0 or art.ihc_cells is None:
        raise SlideArtefactError(f"slide {art.slide_id}: positive-cell density needs "
                                 "tiles.parquet and ihc_cells.parquet (IHC slides)")
    grid = tile_grid_of(art.tiles)
    cells = art.ihc_cells
    return grid, cell_density_grid(art.tiles, cells["x_um"].to_numpy() / art.mpp,
                                   cells["y_um"].to_numpy() / art.mpp, grid, art.mpp)


def plot_til_density(art: SlideArtefacts, thumb: np.ndarray | None = None, ax=None,
                     alpha: float = 0.75, vmax: float | None = None):
    """Thumbnail with lymphocytes per mm² per tile as a heatmap and a colour bar.

    ``vmax`` fixes the top of the colour scale (several slides on one scale); default: the
    slide's 99th percentile.
    """
    grid, dens = til_grid(art)
    return _density(art, thumb, axes_or_new(ax, (6, 6)), dens, grid, vmax, alpha,
                    "lymphocytes per mm² of tissue", "TIL density per tile")


def plot_positive_density(art: SlideArtefacts, thumb: np.ndarray | None = None, ax=None,
                          alpha: float = 0.75, vmax: float | None = None):
    """IHC thumbnail with DAB-positive cells per mm² per tile (``ihc_cells.parquet``)."""
    grid, dens = positive_grid(art)
    n = art.ihc_cells.height
    return _density(art, thumb, axes_or_new(ax, (6, 6)), dens, grid, vmax, alpha,
                    f"{art.stain}+ cells per mm² of tissue",
                    f"{n} {art.stain}-positive cells, density per tile")


def _draw_geometry(ax, geom, colour: str, alpha: float, label: str | None = None) -> None:
    """Fill (with holes) and outline a shapely (Multi)Polygon in data coordinates."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    for poly in getattr(geom, "geoms", [geom]):
        rings = [poly.exterior, *poly.interiors]
        path = MplPath.make_compound_path(*[MplPath(np.asarray(r.coords)[:, :2], closed=True)
                                            for r in rings])
        ax.add_patch(PathPatch(path, facecolor=rgba(colour, alpha), edgecolor=colour,
                               linewidth=0.9, label=label))
        label = None


def plot_compartments(art: SlideArtefacts, thumb: np.ndarray | None = None, ax=None,
                      alpha: float = 0.35):
    """Thumbnail with what the features measure (:mod:`immunodig.report.regions`): tumour core,
    inner and outer invasive margin, the outline of the tumour region, TLS candidates, tumour buds
    (outline and a marker, as they are a few cells wide) and the structures of a structure model
    (``structures.parquet``)."""
    from immunodig.report.regions import REGION_COLOURS, slide_regions

    ax = _base(art, thumb, axes_or_new(ax, (6, 6)))
    found = slide_regions(art)
    regions = {r.name: r for r in found}
    if not regions:
        raise SlideArtefactError(f"slide {art.slide_id}: no classified tiles, so no "
                                 "compartments (H&E slides with tissue classes only)")
    for name in ("core", "margin inner", "margin outer"):
        if name in regions:
            r = regions[name]
            _draw_geometry(ax, r.geometry, REGION_COLOURS[name], alpha,
                           f"{name} ({r.measurements['tissue_area_mm2']:.2f} mm²)")
    if "tumour region" in regions:
        _draw_geometry(ax, regions["tumour region"].geometry, REGION_COLOURS["tumour region"],
                       0.0, "tumour region (outline)")
    tls = [r for r in found if r.name == "TLS"]
    for i, r in enumerate(tls):
        _draw_geometry(ax, r.geometry, REGION_COLOURS["TLS"], 0.5, None if i else f"TLS ({len(tls)})")
    buds = [r for r in found if r.name == "bud"]
    for r in buds:
        _draw_geometry(ax, r.geometry, REGION_COLOURS["bud"], 0.8)
    if buds:
        xy = np.array([(r.measurements["x_um"], r.measurements["y_um"]) for r in buds]) / art.mpp
        ax.scatter(xy[:, 0], xy[:, 1], s=14, marker="o", facecolors="none",
                   edgecolors=REGION_COLOURS["bud"], linewidths=0.9, label=f"tumour buds ({len(buds)})")
    _draw_structures(ax, art)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
              title="compartment (tissue area)", title_fontsize=8)
    margin = float(art.config.get("margin_um", 500.0))
    ax.set_title(f"{art.slide_id}: tumour region, invasive margin ±{margin:g} µm, core, TLS, buds",
                 fontsize=9)
    return ax


def _draw_structures(ax, art: SlideArtefacts) -> None:
    """Outline the segmented structures of ``structures.parquet`` (if any), one colour per class."""
    from shapely import from_wkb

    from immunodig import slide_folder as sf
    from immunodig.report.geojson import structure_colour

    path = art.folder / sf.STRUCTURES_PARQUET
    if not path.is_file():
        return
    structures = pl.read_parquet(path, columns=["class", "geometry_wkb"])
    for name, group in structures.group_by("class", maintain_order=True):
        colour = "#{:02x}{:02x}{:02x}".format(*structure_colour(str(name[0])))
        for i, wkb in enumerate(group["geometry_wkb"]):
            _draw_geometry(ax, from_wkb(wkb), colour, 0.0,
                           None if i else f"{name[0]} (model, {group.height})")


def mask_contours_um(mask: np.ndarray, mask_mpp: float) -> list[np.ndarray]:
    """Outlines (x, y) µm of a tissue mask, pixel ``(col, row)`` at ``(col, row) * mask_mpp``
    (the convention of :func:`immunodig.nuclei.ihc.rigid_register`)."""
    from skimage.measure import find_contours

    padded = np.pad(mask.astype(float), 1)
    return [(c[:, ::-1] - 1.0) * mask_mpp for c in find_contours(padded, 0.5)]


def plot_registration(art: SlideArtefacts, thumb: np.ndarray | None = None, ax=None):
    """The IHC tissue outline mapped by ``registration.json`` onto the patient's H&E slide
    (thumbnail and tissue outline of the H&E slide), with the overlap Dice.

    ``thumb`` (the IHC thumbnail) is not drawn: the picture is in the H&E slide's frame.
    """
    from immunodig.nuclei.ihc import RigidTransform

    reg = art.registration
    if reg is None:
        raise SlideArtefactError(f"slide {art.slide_id}: no registration.json (no H&E slide of "
                                 "the same patient to register onto)")
    if art.mask is None:
        raise SlideArtefactError(f"slide {art.slide_id}: no mask.png; rebuild the slide")
    ref = load_slide_artefacts(art.folder.parent / str(reg["reference_slide_id"]),
                               with_nuclei=False, store_dir=art.store_dir)
    ax = _base(ref, read_thumbnail(ref), axes_or_new(ax, (6, 6)))
    transform = RigidTransform(float(reg["angle_deg"]), tuple(reg["shift_um"]),
                               tuple(reg["centre_um"]), float(reg["overlap_dice"]))
    mask_mpp = float(reg.get("mask_mpp") or art.mask_mpp)
    if ref.mask is not None:
        for i, c in enumerate(mask_contours_um(ref.mask, ref.mask_mpp)):
            ax.plot(c[:, 0] / ref.mpp, c[:, 1] / ref.mpp, color="#006400", linewidth=1.0,
                    label=None if i else f"H&E tissue ({ref.slide_id})")
    for i, c in enumerate(mask_contours_um(art.mask, mask_mpp)):
        xy = transform.apply(c) / ref.mpp
        ax.plot(xy[:, 0], xy[:, 1], color="#c71585", linewidth=1.0, linestyle="--",
                label=None if i else f"{art.stain} tissue, registered")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.set_title(f"{art.slide_id} on {ref.slide_id}: overlap Dice "
                 f"{transform.overlap_dice:.2f}, rotation {transform.angle_deg:.1f}°", fontsize=9)
    return ax


def plot_tissue_mask(art: SlideArtefacts, thumb: np.ndarray | None = None, ax=None):
    """Thumbnail with the detected tissue shaded and outlined."""
    ax = _base(art, thumb, axes_or_new(ax, (6, 6)))
    if art.mask is None:
        raise SlideArtefactError(f"slide {art.slide_id}: no mask.png; rebuild the slide")
    mh, mw = art.mask.shape
    scale = art.mask_mpp / art.mpp
    extent = (0, mw * scale, mh * scale, 0)
    shade = np.zeros((mh, mw, 4))
    shade[art.mask] = rgba("#2ca02c", 0.3)
    ax.imshow(shade, extent=extent, interpolation="nearest")
    if art.mask.any() and not art.mask.all():
        xs = (np.arange(mw) + 0.5) * scale
        ys = (np.arange(mh) + 0.5) * scale
        ax.contour(xs, ys, art.mask.astype(float), levels=[0.5], colors="#006400",
                   linewidths=0.8)
    area_mm2 = float(art.mask.sum()) * (art.mask_mpp / 1000.0) ** 2
    ax.set_title(f"{art.slide_id}: tissue mask ({area_mm2:.2f} mm²)", fontsize=9)
    return ax


def plot_qc_excluded(art: SlideArtefacts, thumb: np.ndarray | None = None, ax=None):
    """Thumbnail with the tiles excluded by quality control, coloured by reason."""
    from matplotlib.patches import Patch

    ax = _base(art, thumb, axes_or_new(ax, (6, 6)))
    if art.tiles is None or art.tiles.height == 0:
        raise SlideArtefactError(f"slide {art.slide_id}: no tiles.parquet; rebuild the slide")
    grid = tile_grid_of(art.tiles)
    img, counts = qc_overlay_rgba(art.tiles, grid)
    ax.imshow(img, extent=grid.extent, interpolation="nearest")
    handles = [Patch(facecolor=QC_COLOURS[r], label=f"{r} ({n} tiles)") for r, n in
               sorted(counts.items())]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                  frameon=False, title="QC excluded", title_fontsize=8)
    total = art.tiles.height
    ax.set_title(f"{art.slide_id}: {sum(counts.values())} of {total} tiles excluded by QC",
                 fontsize=9)
    return ax


def attention_grid(art: SlideArtefacts, attention: pl.DataFrame):
    """The tile grid and each tile's MIL attention relative to uniform (weight x tiles in the
    patient's bag: 1 = an average tile; ``mil_attention`` rows of this slide, NaN elsewhere)."""
    if art.tiles is None or art.tiles.height == 0:
        raise SlideArtefactError(f"slide {art.slide_id}: attention needs tiles.parquet")
    rows = attention.filter(pl.col("slide_id") == art.slide_id)
    if rows.height == 0:
        raise SlideArtefactError(f"slide {art.slide_id}: no attention of this MIL run")
    grid = tile_grid_of(art.tiles)
    rel = (art.tiles.select("col", "row")
           .join(rows.select("col", "row", (pl.col("attention") * pl.col("bag_tiles")).alias("rel")),
                 on=["col", "row"], how="left", maintain_order="left")["rel"].to_numpy().astype(float))
    values = np.full(grid.shape, np.nan)
    values[grid.row, grid.col] = rel
    return grid, values


def plot_attention(art: SlideArtefacts, attention: pl.DataFrame, thumb: np.ndarray | None = None,
                   ax=None, alpha: float = 0.75):
    """Thumbnail with a MIL run's attention per tile (relative to uniform) and a colour bar.

    ``attention``: ``mil_attention`` rows with ``bag_tiles`` (tiles in the patient's bag), as
    :func:`immunodig.report.attention.slide_attention` returns them.
    """
    grid, values = attention_grid(art, attention)
    run = attention["model_run_id"][0]
    return _density(art, thumb, axes_or_new(ax, (6, 6)), values, grid, None, alpha,
                    "attention relative to an average tile", f"MIL attention ({run})")


#: Drawing function of each overlay.
PLOTTERS = {"classes": plot_class_overlay, "til_density": plot_til_density,
            "compartments": plot_compartments, "positive_density": plot_positive_density,
            "registration": plot_registration, "mask": plot_tissue_mask, "qc": plot_qc_excluded}


def render_overlay(art: SlideArtefacts, kind: str, thumb: np.ndarray | None,
                   dpi: int = 100) -> bytes:
    """PNG bytes of one overlay ``kind`` (a key of :data:`OVERLAY_FILES`)."""
    fig = new_figure((7.5, 6.0))
    PLOTTERS[kind](art, thumb, ax=fig.add_subplot())
    return png_bytes(fig, dpi)


def write_attention_overlay(store: str | Path, folder: str | Path, run_id: str,
                            out_dir: str | Path | None = None, dpi: int = 100) -> Path | str:
    """Write ``attention.png`` of one slide for MIL run ``run_id`` (default: into its folder);
    returns the path, or ``"not available: <why>"``."""
    from immunodig.io import atomic_path
    from immunodig.report.attention import slide_attention

    art = load_slide_artefacts(folder, store_dir=Path(store).resolve().parent)
    try:
        rows = slide_attention(store, art.slide_id, run_id)
    except SlideArtefactError as exc:
        return f"not available: {exc}"
    fig = new_figure((7.5, 6.0))
    plot_attention(art, rows, read_thumbnail(art), ax=fig.add_subplot())
    path = (Path(out_dir) if out_dir else art.folder) / ATTENTION_PNG
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(fig, dpi))
    return path


def write_slide_overlays(folder: str | Path, out_dir: str | Path | None = None,
                         dpi: int = 100, store_dir: str | Path | None = None) -> dict[str, Path | str]:
    """Write the overlay PNGs of one slide's stain (default: into its own folder); ``store_dir``
    (the store's folder) resolves a relative slide path.

    Returns
    -------
    dict
        Overlay kind (:func:`overlay_kinds`) -> written path, or -> ``"not available: <why>"``.
    """
    from immunodig.io import atomic_path

    art = load_slide_artefacts(folder, store_dir=store_dir)
    out = Path(out_dir) if out_dir else art.folder
    thumb = read_thumbnail(art)
    result: dict[str, Path | str] = {}
    for kind in overlay_kinds(art):
        name = OVERLAY_FILES[kind]
        try:
            data = render_overlay(art, kind, thumb, dpi)
        except SlideArtefactError as exc:
            result[kind] = f"not available: {exc}"
            continue
        with atomic_path(out / name) as tmp:
            tmp.write_bytes(data)
        result[kind] = out / name
    return result
