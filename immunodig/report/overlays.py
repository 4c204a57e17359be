"""Per-slide pictures: tissue classes, TIL density, tissue mask and QC exclusions over the
thumbnail.

Everything is drawn in level-0 pixel coordinates (the thumbnail is stretched over the slide's
full extent), so tiles (``x_px, y_px, w_px, h_px``), nuclei (``x_px, y_px``) and the mask (which
covers the slide from its top-left corner at ``mask_mpp``) line up without resampling by hand.
Colours of the Kather classes are the fixed ones of :data:`immunodig.vocab.KATHER_COLOURS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from immunodig.errors import SlideArtefactError
from immunodig.report.figures import axes_or_new, new_figure, png_bytes
from immunodig.report.slide_artefacts import SlideArtefacts, load_slide_artefacts, read_thumbnail
from immunodig.report.tile_grids import (QC_COLOURS, class_overlay_rgba, qc_overlay_rgba, rgba,
                                         til_density_grid, tile_grid_of)
from immunodig.vocab import KATHER_CLASSES, KATHER_COLOURS, KATHER_NAMES

#: File names written beside a slide's other outputs by :func:`write_slide_overlays`.
OVERLAY_FILES: dict[str, str] = {
    "classes": "overlay_tissue_classes.png",
    "til_density": "overlay_til_density.png",
    "mask": "overlay_tissue_mask.png",
    "qc": "overlay_qc_excluded.png",
}



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


def plot_til_density(art: SlideArtefacts, thumb: np.ndarray | None = None, ax=None,
                     alpha: float = 0.75):
    """Thumbnail with lymphocytes per mm² per tile as a heatmap and a colour bar."""
    ax = _base(art, thumb, axes_or_new(ax, (6, 6)))
    if art.tiles is None or art.nuclei is None:
        raise SlideArtefactError(f"slide {art.slide_id}: TIL density needs tiles.parquet and "
                                 "nuclei.parquet; build with a nuclei backend")
    grid = tile_grid_of(art.tiles)
    dens = til_density_grid(art.tiles, art.nuclei, grid, art.mpp)
    finite = dens[np.isfinite(dens)]
    vmax = float(np.quantile(finite, 0.99)) if finite.size else 1.0
    im = ax.imshow(np.ma.masked_invalid(dens), extent=grid.extent, interpolation="nearest",
                   cmap="magma_r", vmin=0, vmax=max(vmax, 1e-9), alpha=alpha)
    ax.figure.colorbar(im, ax=ax, shrink=0.6, label="lymphocytes per mm² of tissue")
    ax.set_title(f"{art.slide_id}: TIL density per tile", fontsize=9)
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


#: Drawing function of each overlay.
PLOTTERS = {"classes": plot_class_overlay, "til_density": plot_til_density,
            "mask": plot_tissue_mask, "qc": plot_qc_excluded}


def render_overlay(art: SlideArtefacts, kind: str, thumb: np.ndarray | None,
                   dpi: int = 100) -> bytes:
    """PNG bytes of one overlay ``kind`` (a key of :data:`OVERLAY_FILES`)."""
    fig = new_figure((7.5, 6.0))
    PLOTTERS[kind](art, thumb, ax=fig.add_subplot())
    return png_bytes(fig, dpi)


def write_slide_overlays(folder: str | Path, out_dir: str | Path | None = None,
                         dpi: int = 100) -> dict[str, Path | str]:
    """Write every overlay PNG of one slide (default: into its own folder).

    Returns
    -------
    dict
        Overlay kind -> written path, or -> ``"not available: <why>"``.
    """
    from immunodig.io import atomic_path

    art = load_slide_artefacts(folder)
    out = Path(out_dir) if out_dir else art.folder
    thumb = read_thumbnail(art)
    result: dict[str, Path | str] = {}
    for kind, name in OVERLAY_FILES.items():
        try:
            data = render_overlay(art, kind, thumb, dpi)
        except SlideArtefactError as exc:
            result[kind] = f"not available: {exc}"
            continue
        with atomic_path(out / name) as tmp:
            tmp.write_bytes(data)
        result[kind] = out / name
    return result
