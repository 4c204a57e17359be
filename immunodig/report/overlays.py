"""Per-slide pictures: tissue classes, TIL density, tissue mask and QC exclusions over the
thumbnail.

Everything is drawn in level-0 pixel coordinates (the thumbnail is stretched over the slide's
full extent), so tiles (``x_px, y_px, w_px, h_px``), nuclei (``x_px, y_px``) and the mask (which
covers the slide from its top-left corner at ``mask_mpp``) line up without resampling by hand.
Colours of the Kather classes are the fixed ones of :data:`immunodig.vocab.KATHER_COLOURS`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from immunodig.errors import ImmunodigError, SlideError
from immunodig.report.figures import axes_or_new, new_figure, png_bytes
from immunodig.vocab import KATHER_CLASSES, KATHER_COLOURS, KATHER_NAMES

log = logging.getLogger(__name__)

#: File names written beside a slide's other outputs by :func:`write_slide_overlays`.
OVERLAY_FILES: dict[str, str] = {
    "classes": "overlay_tissue_classes.png",
    "til_density": "overlay_til_density.png",
    "mask": "overlay_tissue_mask.png",
    "qc": "overlay_qc_excluded.png",
}
#: Colours of QC exclusion reasons (``tiles.parquet`` ``qc_reason``).
QC_COLOURS: dict[str, str] = {"blur": "#ff7f0e", "pen": "#17becf", "background": "#bcbd22",
                              "other": "#7f7f7f"}
#: Longest side of thumbnails, in pixels.
THUMB_MAX_PX = 1200
#: Cell class counted as TIL in the density map.
TIL_CLASS = "lymphocyte"


class SlideArtefactError(ImmunodigError):
    """A slide's folder lacks what a picture needs."""


@dataclass
class SlideArtefacts:
    """What a slide's folder holds (``None`` where a file is absent).

    Attributes
    ----------
    folder : Path
    slide : dict
        ``slide.json`` (slide_id, path, mpp_x, width_px, height_px, ...).
    tiles, nuclei : polars.DataFrame or None
    mask : numpy.ndarray of bool or None
    mask_mpp : float or None
        From the manifest's config (``mask_mpp``).
    """

    folder: Path
    slide: dict
    tiles: pl.DataFrame | None
    nuclei: pl.DataFrame | None
    mask: np.ndarray | None
    mask_mpp: float | None

    @property
    def slide_id(self) -> str:
        return str(self.slide.get("slide_id") or self.folder.name)

    @property
    def mpp(self) -> float:
        return float(self.slide["mpp_x"])

    @property
    def size_px(self) -> tuple[int, int]:
        """Level-0 ``(width, height)``."""
        return int(self.slide["width_px"]), int(self.slide["height_px"])


def load_slide_artefacts(folder: str | Path, with_nuclei: bool = True,
                         nuclei_columns: list[str] | None = None) -> SlideArtefacts:
    """Read a per-slide folder (see docs/architecture.md); raise when ``slide.json`` is absent.

    ``nuclei_columns`` limits what is read of ``nuclei.parquet`` (all columns by default).
    """
    from PIL import Image

    folder = Path(folder)
    try:
        slide = json.loads((folder / "slide.json").read_text())
    except (OSError, ValueError) as exc:
        raise SlideArtefactError(
            f"{folder}: no readable slide.json; run build-features for this slide first") from exc
    for key in ("mpp_x", "width_px", "height_px"):
        if slide.get(key) is None:
            raise SlideArtefactError(f"{folder / 'slide.json'}: key {key!r} missing; rebuild")
    tiles = pl.read_parquet(folder / "tiles.parquet") if (folder / "tiles.parquet").is_file() \
        else None
    nuclei = None
    if with_nuclei and (folder / "nuclei.parquet").is_file():
        nuclei = pl.read_parquet(folder / "nuclei.parquet", columns=nuclei_columns)
    mask = mask_mpp = None
    if (folder / "mask.png").is_file():
        mask = np.asarray(Image.open(folder / "mask.png")) > 127
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            mask_mpp = float(manifest["config"]["mask_mpp"])
        except (OSError, ValueError, KeyError, TypeError):
            # Without the manifest, infer the mask resolution from its width.
            mask_mpp = float(slide["mpp_x"]) * float(slide["width_px"]) / mask.shape[1]
    return SlideArtefacts(folder, slide, tiles, nuclei, mask, mask_mpp)


def thumbnail_mpp(art: SlideArtefacts, max_px: int = THUMB_MAX_PX) -> float:
    """Resolution (µm/px) at which the slide's longest side is ``max_px`` pixels."""
    return max(art.mpp, max(art.size_px) * art.mpp / max_px)


def read_thumbnail(art: SlideArtefacts, max_px: int = THUMB_MAX_PX) -> np.ndarray | None:
    """The slide's thumbnail, or ``None`` (logged) when the slide file cannot be opened."""
    from immunodig.slides import Slide

    path = art.slide.get("path")
    mpp = art.mpp if art.slide.get("mpp_source") == "override" else None
    try:
        with Slide(path, mpp=mpp) as slide:
            return slide.thumbnail(thumbnail_mpp(art, max_px))
    except (SlideError, OSError, TypeError) as exc:
        log.warning("slide %s: thumbnail not available (%s)", art.slide_id, type(exc).__name__)
        return None


# -- computation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TileGrid:
    """Tiles laid out on their regular grid, in level-0 pixels.

    ``row``/``col`` index each tile; ``extent`` is ``(left, right, bottom, top)`` for imshow.
    """

    row: np.ndarray
    col: np.ndarray
    shape: tuple[int, int]
    extent: tuple[float, float, float, float]
    tile_w_px: float
    tile_h_px: float
    x0_px: float
    y0_px: float

    def cell_of(self, x_px, y_px) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grid cell of level-0 points and whether it lies on the grid."""
        c = np.floor((np.asarray(x_px, float) - self.x0_px) / self.tile_w_px).astype(np.int64)
        r = np.floor((np.asarray(y_px, float) - self.y0_px) / self.tile_h_px).astype(np.int64)
        inside = (r >= 0) & (r < self.shape[0]) & (c >= 0) & (c < self.shape[1])
        return r, c, inside


def tile_grid_of(tiles: pl.DataFrame) -> TileGrid:
    """Place ``tiles.parquet`` rows on their grid (tiles share one size, as the tiler makes)."""
    x = tiles["x_px"].to_numpy().astype(float)
    y = tiles["y_px"].to_numpy().astype(float)
    w = float(np.median(tiles["w_px"].to_numpy()))
    h = float(np.median(tiles["h_px"].to_numpy()))
    x0, y0 = float(x.min()), float(y.min())
    col = np.rint((x - x0) / w).astype(np.int64)
    row = np.rint((y - y0) / h).astype(np.int64)
    shape = (int(row.max()) + 1, int(col.max()) + 1)
    extent = (x0, x0 + shape[1] * w, y0 + shape[0] * h, y0)
    return TileGrid(row, col, shape, extent, w, h, x0, y0)


def _rgba(hex_colour: str, alpha: float) -> np.ndarray:
    from matplotlib.colors import to_rgba

    return np.array(to_rgba(hex_colour, alpha), dtype=float)


def class_overlay_rgba(tiles: pl.DataFrame, grid: TileGrid, alpha: float = 0.5) -> np.ndarray:
    """``(rows, cols, 4)`` float image: Kather colour of each classified tile, transparent
    elsewhere."""
    img = np.zeros((*grid.shape, 4))
    pred = tiles["pred_class"].to_list()
    for cls in KATHER_CLASSES:
        m = np.array([p == cls for p in pred], dtype=bool)
        img[grid.row[m], grid.col[m]] = _rgba(KATHER_COLOURS[cls], alpha)
    return img


def til_density_grid(tiles: pl.DataFrame, nuclei: pl.DataFrame, grid: TileGrid,
                     mpp: float) -> np.ndarray:
    """Lymphocytes per mm² of tissue in each tile (NaN off tissue or where QC failed).

    The tissue area of a tile is its area times ``tissue_fraction``; a nucleus belongs to the
    tile whose rectangle contains its level-0 centroid.
    """
    area_mm2 = (grid.tile_w_px * mpp / 1000.0) * (grid.tile_h_px * mpp / 1000.0)
    tissue = np.zeros(grid.shape)
    frac = tiles["tissue_fraction"].fill_null(0.0).to_numpy().astype(float)
    ok = tiles["qc_pass"].fill_null(False).to_numpy().astype(bool) if "qc_pass" in tiles.columns \
        else np.ones(tiles.height, bool)
    tissue[grid.row[ok], grid.col[ok]] = frac[ok] * area_mm2
    counts = np.zeros(grid.shape)
    lym = nuclei.filter(pl.col("cell_class") == TIL_CLASS)
    r, c, inside = grid.cell_of(lym["x_px"].to_numpy(), lym["y_px"].to_numpy())
    np.add.at(counts, (r[inside], c[inside]), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tissue > 0, counts / tissue, np.nan)


def qc_overlay_rgba(tiles: pl.DataFrame, grid: TileGrid, alpha: float = 0.7) -> tuple[np.ndarray, dict[str, int]]:
    """Tiles excluded by QC coloured by reason; returns the image and the count per reason."""
    img = np.zeros((*grid.shape, 4))
    failed = ~tiles["qc_pass"].fill_null(True).to_numpy().astype(bool)
    reasons = tiles["qc_reason"].to_list() if "qc_reason" in tiles.columns else [None] * tiles.height
    counts: dict[str, int] = {}
    for i in np.flatnonzero(failed):
        reason = reasons[i] if reasons[i] in QC_COLOURS else "other"
        counts[reason] = counts.get(reason, 0) + 1
        img[grid.row[i], grid.col[i]] = _rgba(QC_COLOURS[reason], alpha)
    return img, counts


# -- drawing --------------------------------------------------------------------------------
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
    shade[art.mask] = _rgba("#2ca02c", 0.3)
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


def slide_folder(store_path: str | Path, slide_id: str, work_dir: str | Path | None = None) -> Path:
    """The per-slide folder of a slide of the store (default work dir: beside the store).

    Raises
    ------
    SlideArtefactError
        The slide is not in the store or its folder is missing.
    """
    from immunodig.features.build import default_work_dir
    from immunodig.store import query

    found = query(store_path, "select slide_id from slides where slide_id = $id",
                  {"id": slide_id})
    if found.height == 0 or "/" in slide_id or "\\" in slide_id:
        raise SlideArtefactError(f"slide {slide_id} is not in {store_path}; list slides with "
                                 "`select slide_id, stain from slides`")
    folder = (Path(work_dir) if work_dir else default_work_dir(store_path)) / slide_id
    if not folder.is_dir():
        raise SlideArtefactError(f"slide {slide_id}: folder {folder} not found; pass --work-dir "
                                 "where build-features wrote the per-slide folders")
    return folder
