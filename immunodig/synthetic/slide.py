"""One synthetic slide: layout, nuclei, rendering to a pyramidal TIFF, and its ground truth."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from immunodig.io import atomic_path
from immunodig.synthetic.fields import Fields
from immunodig.synthetic.layout import LayoutParams, make_layout
from immunodig.synthetic.nuclei import NucleusDensities, NucleusTable, sample_nuclei
from immunodig.synthetic.render import Appearance, render_rgb
from immunodig.synthetic.slide_writer import write_pyramid_tiff
from immunodig.vocab import KATHER_CLASSES

#: Target µm per class-map pixel; the actual value is the nearest integer multiple of the mpp.
LAYOUT_MPP_TARGET = 2.0
#: Nuclei within this distance (µm) of a strip are passed to its renderer.
NUCLEUS_MARGIN_UM = 20.0


@dataclass(frozen=True)
class SlideParams:
    """What differs between slides: composition and the planted lymphocyte densities.

    Attributes
    ----------
    layout : LayoutParams
        Composition of the section.
    til_tumour_per_mm2 : float
        Density of lymphocytes scattered in tumour tissue (epithelium and septa, not lumina).
    til_stroma_per_mm2 : float
        Density of lymphocytes scattered in stroma (STR regions).
    """

    layout: LayoutParams = field(default_factory=LayoutParams)
    til_tumour_per_mm2: float = 400.0
    til_stroma_per_mm2: float = 600.0


@dataclass
class SlideTruth:
    """Ground truth of a generated slide.

    Attributes
    ----------
    classmap : numpy.ndarray
        ``uint8`` indices into KATHER_CLASSES, one per ``classmap_mpp`` µm; pixel ``(x, y)`` of the
        slide has class ``classmap[y // factor, x // factor]`` with ``factor = classmap_mpp / mpp``.
    nuclei : NucleusTable
        Every drawn nucleus; ``nucleus_tissue`` holds the class index under each centre.
    """

    name: str
    stain: str
    seed: int
    mpp: float
    width_px: int
    height_px: int
    classmap_mpp: float
    classmap: np.ndarray
    nuclei: NucleusTable
    nucleus_tissue: np.ndarray
    params: SlideParams
    level_count: int
    mpp_written: bool

    @property
    def class_areas_mm2(self) -> dict[str, float]:
        counts = np.bincount(self.classmap.ravel(), minlength=len(KATHER_CLASSES))
        px_mm2 = self.classmap_mpp ** 2 * 1e-6
        return {c: float(counts[i] * px_mm2) for i, c in enumerate(KATHER_CLASSES)}

    def lymphocyte_density_per_mm2(self, cls: str) -> float:
        """Drawn lymphocytes whose centre lies in class ``cls``, per mm² of that class."""
        area = self.class_areas_mm2[cls]
        n = int(np.sum((self.nuclei.cell_class == "lymphocyte")
                       & (self.nucleus_tissue == KATHER_CLASSES.index(cls))))
        return n / area if area > 0 else float("nan")

    def summary(self) -> dict:
        """The ``truth.json`` content."""
        areas = self.class_areas_mm2
        tissue = sum(v for k, v in areas.items() if k != "BACK")
        cell = self.nuclei.cell_class
        tis = self.nucleus_tissue
        counts = {c: {cc: int(np.sum((tis == i) & (cell == cc)))
                      for cc in ("lymphocyte", "epithelial", "fibroblast", "other")}
                  for i, c in enumerate(KATHER_CLASSES)}
        tum, strm = areas["TUM"], areas["STR"]
        return {
            "slide_name": self.name, "stain": self.stain, "seed": self.seed,
            "mpp": self.mpp, "mpp_written": self.mpp_written,
            "width_px": self.width_px, "height_px": self.height_px,
            "level_count": self.level_count,
            "classmap_file": "classmap.png", "classmap_mpp": self.classmap_mpp,
            "classmap_shape": list(self.classmap.shape), "classes": list(KATHER_CLASSES),
            "class_areas_mm2": areas, "tissue_area_mm2": tissue,
            "class_fractions_of_tissue": {k: (v / tissue if tissue else 0.0)
                                          for k, v in areas.items() if k != "BACK"},
            "tumour_stroma_ratio": tum / (tum + strm) if tum + strm else None,
            "n_nuclei": len(self.nuclei),
            "nucleus_counts_by_tissue": counts,
            "lymphocyte_density_per_mm2": {
                c: (self.lymphocyte_density_per_mm2(c) if areas[c] > 0 else None)
                for c in KATHER_CLASSES if c != "BACK"},
            "til_density_tumour_per_mm2": (self.lymphocyte_density_per_mm2("TUM")
                                           if tum > 0 else None),
            "params": asdict(self.params),
        }

    def nuclei_frame(self):
        """Nucleus table (polars): x_um, y_um, x_px, y_px, cell_class, tissue_class, ..."""
        import polars as pl

        n = self.nuclei
        return pl.DataFrame({
            "x_um": n.x_um.astype(np.float64), "y_um": n.y_um.astype(np.float64),
            "x_px": (n.x_um / self.mpp).astype(np.float64),
            "y_px": (n.y_um / self.mpp).astype(np.float64),
            "cell_class": n.cell_class, "kind": n.kind_name,
            "tissue_class": np.array(KATHER_CLASSES)[self.nucleus_tissue],
            "diameter_um": n.diameter_um.astype(np.float64),
            "major_um": n.major_um.astype(np.float64), "minor_um": n.minor_um.astype(np.float64),
        })

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write ``classmap.png``, ``truth.json`` and ``nuclei.parquet`` into ``out_dir``."""
        from PIL import Image

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "classmap.png") as tmp:
            Image.fromarray(self.classmap).save(tmp, format="PNG")
        with atomic_path(out / "nuclei.parquet") as tmp:
            self.nuclei_frame().write_parquet(tmp)
        with atomic_path(out / "truth.json") as tmp:
            tmp.write_text(json.dumps(self.summary(), indent=1))
        return out


@dataclass
class SlideModel:
    """Everything needed to render any region of a slide (layout, nuclei, fields, look)."""

    seed: int
    mpp: float
    factor: int
    classmap: np.ndarray
    nuclei: NucleusTable
    nucleus_tissue: np.ndarray
    fields: Fields
    look: Appearance

    @property
    def size_px(self) -> tuple[int, int]:
        n = self.classmap.shape[0] * self.factor
        return n, n

    def class_at(self, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
        """Class index (into KATHER_CLASSES) at µm positions; BACK outside the slide."""
        g = self.mpp * self.factor
        n = self.classmap.shape[0]
        ix = np.floor(np.asarray(x_um) / g).astype(np.int64)
        iy = np.floor(np.asarray(y_um) / g).astype(np.int64)
        ok = (ix >= 0) & (ix < n) & (iy >= 0) & (iy < n)
        out = np.full(ix.shape, KATHER_CLASSES.index("BACK"), dtype=np.uint8)
        out[ok] = self.classmap[iy[ok], ix[ok]]
        return out

    def class_idx(self, x0_px: int, y0_px: int, w_px: int, h_px: int) -> np.ndarray:
        """Per-pixel class indices of a level-0 rectangle."""
        ys = np.arange(y0_px, y0_px + h_px) // self.factor
        xs = np.arange(x0_px, x0_px + w_px) // self.factor
        n = self.classmap.shape[0]
        back = np.uint8(KATHER_CLASSES.index("BACK"))
        rows = np.where((ys >= 0) & (ys < n), ys, 0)
        cols = np.where((xs >= 0) & (xs < n), xs, 0)
        out = self.classmap[rows][:, cols]
        out[(ys < 0) | (ys >= n), :] = back
        out[:, (xs < 0) | (xs >= n)] = back
        return out

    def nuclei_in_rows(self, y0_px: int, y1_px: int, table: NucleusTable | None = None
                       ) -> NucleusTable:
        """Nuclei (sorted by y) whose stamp can reach rows ``[y0_px, y1_px)``."""
        table = self.nuclei if table is None else table
        lo = np.searchsorted(table.y_um, y0_px * self.mpp - NUCLEUS_MARGIN_UM)
        hi = np.searchsorted(table.y_um, y1_px * self.mpp + NUCLEUS_MARGIN_UM)
        return table.subset(slice(lo, hi))

    def render(self, x0_px: int, y0_px: int, w_px: int, h_px: int) -> np.ndarray:
        """H&E RGB of a level-0 rectangle, identical to the slide's pixels before JPEG."""
        return render_rgb(x0_px, y0_px, self.class_idx(x0_px, y0_px, w_px, h_px), self.mpp,
                          self.nuclei_in_rows(y0_px, y0_px + h_px), self.fields, self.look)


def build_slide_model(seed: int, slide_mm: float, mpp: float, params: SlideParams) -> SlideModel:
    """Draw layout and nuclei of a slide (no pixels yet)."""
    if slide_mm <= 0 or mpp <= 0:
        raise ValueError("slide_mm and mpp must be positive")
    factor = max(1, int(round(LAYOUT_MPP_TARGET / mpp)))
    n_layout = max(8, int(round(slide_mm * 1000.0 / (mpp * factor))))
    ss = np.random.SeedSequence(seed)
    r_layout, r_nuclei, r_look = (np.random.default_rng(s) for s in ss.spawn(3))
    fields = Fields(seed)
    look = Appearance.random(r_look)
    cm = make_layout(n_layout, mpp * factor, params.layout, fields, r_layout)
    model = SlideModel(seed, mpp, factor, cm, NucleusTable.empty(), np.zeros(0, np.uint8),
                       fields, look)
    side_um = n_layout * factor * mpp
    nuc = sample_nuclei((0.0, 0.0, side_um, side_um), model.class_at, KATHER_CLASSES, fields,
                        look.angles, NucleusDensities(params.til_tumour_per_mm2,
                                                      params.til_stroma_per_mm2), r_nuclei)
    nuc = nuc.subset(np.argsort(nuc.y_um, kind="stable"))
    model.nuclei = nuc
    model.nucleus_tissue = model.class_at(nuc.x_um, nuc.y_um)
    return model


def make_slide(path: str | os.PathLike, seed: int, slide_mm: float = 4.0, mpp: float = 0.5,
               params: SlideParams | None = None, *, stain: str = "HE", write_mpp: bool = True,
               truth_dir: str | os.PathLike | None = None) -> SlideTruth:
    """Generate one synthetic slide as a pyramidal tiled JPEG TIFF.

    Parameters
    ----------
    path : path-like
        Output ``.tiff`` (written atomically).
    seed : int
        Seed; the same seed and arguments give the same pixels. An H&E and a CD3 slide with the
        same seed are serial sections (same layout and cells).
    slide_mm : float
        Side of the square slide in mm.
    mpp : float
        Microns per pixel of level 0.
    params : SlideParams, optional
        Composition and lymphocyte densities.
    stain : {"HE", "CD3"}
        H&E, or CD3 IHC (DAB on haematoxylin).
    write_mpp : bool
        ``False`` writes no resolution metadata (for "missing mpp" error paths).
    truth_dir : path-like, optional
        Where to write ``classmap.png``, ``truth.json`` and ``nuclei.parquet``.

    Returns
    -------
    SlideTruth
    """
    from immunodig.synthetic.ihc import cd3_cells, render_cd3_rgb

    if stain not in ("HE", "CD3"):
        raise ValueError(f"stain must be 'HE' or 'CD3', got {stain!r}")
    params = SlideParams() if params is None else params
    model = build_slide_model(seed, slide_mm, mpp, params)
    height, width = model.size_px
    dab = cd3_cells(model.nuclei) if stain == "CD3" else None

    def strip(y0: int, rows: int) -> np.ndarray:
        if dab is None:
            return model.render(0, y0, width, rows)
        return render_cd3_rgb(0, y0, model.class_idx(0, y0, width, rows), mpp,
                              model.nuclei_in_rows(y0, y0 + rows),
                              model.nuclei_in_rows(y0, y0 + rows, dab), model.fields, model.look)

    path = Path(path)
    desc = f"immunodig synthetic {stain} slide; seed={seed}; mpp={mpp if write_mpp else 'none'}"
    levels = write_pyramid_tiff(path, height, width, strip, mpp if write_mpp else None, desc)
    truth = SlideTruth(path.stem, stain, seed, mpp, width, height, mpp * model.factor,
                       model.classmap, model.nuclei, model.nucleus_tissue, params, levels,
                       write_mpp)
    if truth_dir is not None:
        truth.write(truth_dir)
    return truth
