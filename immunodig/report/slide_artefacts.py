"""A slide's result folder as the report sees it: what it holds, its thumbnail, where it is.

Reading goes through :mod:`immunodig.slide_folder`, the one per-slide folder contract.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from immunodig import slide_folder as sf
from immunodig.errors import SlideArtefactError, SlideDirError, SlideError

log = logging.getLogger(__name__)

#: Longest side of thumbnails, in pixels.
THUMB_MAX_PX = 1200


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
    config : dict
        The build configuration of the manifest (empty without one).
    ihc_cells : polars.DataFrame or None
        IHC slides: DAB-positive cells (``x_um, y_um, area_um2, dab_od_mean``, IHC frame).
    registration : dict or None
        IHC slides: the rigid transform onto the patient's H&E slide (``registration.json``).
    """

    folder: Path
    slide: dict
    tiles: pl.DataFrame | None
    nuclei: pl.DataFrame | None
    mask: np.ndarray | None
    mask_mpp: float | None
    config: dict = field(default_factory=dict)
    ihc_cells: pl.DataFrame | None = None
    registration: dict | None = None
    #: Folder of the store, which a relative ``path`` (``--store-paths relative``) is relative
    #: to; ``None``: the default layout, ``<store>_slides/<slide_id>/`` beside the store.
    store_dir: Path | None = None

    @property
    def slide_file(self) -> Path | None:
        """The slide file, or ``None`` when no path was stored (``--store-paths none``)."""
        base = self.store_dir if self.store_dir is not None else self.folder.parent.parent
        return sf.resolve_slide_path(self.slide.get("path"), base)

    @property
    def slide_id(self) -> str:
        return str(self.slide.get("slide_id") or self.folder.name)

    @property
    def stain(self) -> str:
        return str(self.slide.get("stain") or "HE")

    @property
    def mpp(self) -> float:
        return float(self.slide["mpp_x"])

    @property
    def size_px(self) -> tuple[int, int]:
        """Level-0 ``(width, height)``."""
        return int(self.slide["width_px"]), int(self.slide["height_px"])


def load_slide_artefacts(folder: str | Path, with_nuclei: bool = True,
                         nuclei_columns: list[str] | None = None,
                         store_dir: str | Path | None = None) -> SlideArtefacts:
    """Read a per-slide folder (:mod:`immunodig.slide_folder`); raise when ``slide.json`` is absent.

    ``nuclei_columns`` limits what is read of ``nuclei.parquet`` (all columns by default);
    ``store_dir`` is the store's folder (:attr:`SlideArtefacts.store_dir`).
    """
    folder = Path(folder)
    try:
        slide = sf.read_slide_record(folder)
    except SlideDirError as exc:
        raise SlideArtefactError(f"{exc}; run build-features for this slide first") from exc
    nuclei = sf.read_nuclei(folder, nuclei_columns) if with_nuclei else None
    mask, mask_mpp = sf.read_mask(folder, slide)
    manifest = sf.read_manifest(folder) or {}
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    cells_path = folder / sf.IHC_CELLS_PARQUET
    ihc_cells = pl.read_parquet(cells_path) if cells_path.is_file() else None
    reg_path = folder / sf.REGISTRATION_JSON
    registration = sf.read_json(reg_path) if reg_path.is_file() else None
    return SlideArtefacts(folder, slide, sf.read_tiles(folder), nuclei, mask, mask_mpp, config,
                          ihc_cells, registration, Path(store_dir) if store_dir else None)


def thumbnail_mpp(art: SlideArtefacts, max_px: int = THUMB_MAX_PX) -> float:
    """Resolution (µm/px) at which the slide's longest side is ``max_px`` pixels."""
    return max(art.mpp, max(art.size_px) * art.mpp / max_px)


def read_thumbnail(art: SlideArtefacts, max_px: int = THUMB_MAX_PX) -> np.ndarray | None:
    """The slide's thumbnail, or ``None`` (logged) when the slide file cannot be opened or no
    path was stored (``--store-paths none``).

    tifffile's own messages about odd tags of scanner files are silenced (errors stay).
    """
    from immunodig.slides import Slide

    logging.getLogger("tifffile").setLevel(logging.ERROR)
    path = art.slide_file
    if path is None:
        log.info("slide %s: no slide file path stored (--store-paths none)", art.slide_id)
        return None
    mpp = art.mpp if art.slide.get("mpp_source") == "override" else None
    try:
        with Slide(path, mpp=mpp) as slide:
            return slide.thumbnail(thumbnail_mpp(art, max_px))
    except (SlideError, OSError, TypeError) as exc:
        log.warning("slide %s: thumbnail not available (%s)", art.slide_id, type(exc).__name__)
        return None


def resolve_slides(store_path: str | Path, ref: str | None, every: bool = False) -> list[str]:
    """Slide ids of the store named by ``ref``: an id, a unique id prefix, or a slide file (its
    path or file name); ``every`` gives all slides.

    Raises
    ------
    SlideArtefactError
        Nothing or several slides match (the message says how to list them).
    """
    from immunodig.store import query

    slides = query(store_path, "select slide_id, path from slides order by slide_id")
    ids = slides["slide_id"].to_list()
    if every:
        return ids
    listing = ("; list them with `python cli.py query \"select slide_id, stain, path from slides\" "
               "--store STORE`")
    if not ref:
        raise SlideArtefactError("name a slide (id, id prefix or file name) or pass --all")
    if ref in ids:
        return [ref]
    paths = [str(p or "") for p in slides["path"].to_list()]
    by_file = [i for i, p in zip(ids, paths) if p and (p == ref or Path(p).name == Path(ref).name)]
    by_prefix = [i for i in ids if i.startswith(ref)]
    found = by_file or by_prefix
    if len(found) == 1:
        return found
    if not found:
        raise SlideArtefactError(f"no slide of {store_path} has the id, id prefix or file name "
                                 f"{ref!r}{listing}")
    raise SlideArtefactError(f"{len(found)} slides of {store_path} match {ref!r}: give more of "
                             f"the id{listing}")


def locate_slide_folder(store_path: str | Path, slide_id: str, work_dir: str | Path | None = None) -> Path:
    """The per-slide folder of a slide of the store (default work dir: beside the store).

    Raises
    ------
    SlideArtefactError
        The slide is not in the store or its folder is missing.
    """
    from immunodig.store import query

    found = query(store_path, "select slide_id from slides where slide_id = $id",
                  {"id": slide_id})
    if found.height == 0 or "/" in slide_id or "\\" in slide_id:
        raise SlideArtefactError(f"slide {slide_id} is not in {store_path}; list slides with "
                                 "`select slide_id, stain from slides`")
    folder = sf.slide_dir(work_dir or sf.default_work_dir(store_path), slide_id)
    if not folder.is_dir():
        raise SlideArtefactError(f"slide {slide_id}: folder {folder} not found; pass --work-dir "
                                 "where build-features wrote the per-slide folders")
    return folder
