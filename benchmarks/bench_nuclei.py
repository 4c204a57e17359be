"""Speed of the nuclei stage: nuclei/s per backend and seconds per mm² of tissue (nuclei + TIL).

A 1 mm² mosaic of real tissue (the shared MoNuSeg colon image resampled to 0.5 µm/px and tiled)
is run through :func:`immunodig.nuclei.segment_slide` exactly as ``build-features`` runs it, with
the rule and with the shipped cell classifier (patch-CNN ensemble), then through the TIL features. Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_nuclei.py [--mm 1.0] [--cellpose-model FILE]
        [--torchscript-model FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from immunodig.config import BuildConfig
from immunodig.features.til import til_features
from immunodig.nuclei.cell_classifier import load_cell_classifier
from immunodig.nuclei.datasets import read_monuseg
from immunodig.nuclei.rule_classifier import RuleCellClassifier
from immunodig.nuclei.segmenter import get_segmenter
from immunodig.nuclei.slide_nuclei import segment_slide
from immunodig.vocab import KATHER_CLASSES

ROOT = Path(__file__).resolve().parents[1]


class MosaicSlide:
    """In-memory slide at 0.5 µm/px built by tiling one image (``read`` crops, white outside)."""

    def __init__(self, rgb: np.ndarray, mpp: float = 0.5) -> None:
        self.rgb, self.mpp, self.mpp_x, self.mpp_y = rgb, mpp, mpp, mpp

    def read(self, x_px: float, y_px: float, size_px: tuple[int, int], mpp: float) -> np.ndarray:
        w, h = size_px
        out = np.full((h, w, 3), 255, np.uint8)
        x0, y0 = int(round(x_px)), int(round(y_px))
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(self.rgb.shape[1], x0 + w), min(self.rgb.shape[0], y0 + h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = self.rgb[sy0:sy1, sx0:sx1]
        return out


def mosaic(side_mm: float) -> np.ndarray:
    from skimage.transform import rescale

    im = next(i for i in read_monuseg(ROOT / ".." / "shared" / "data" / "monuseg") if i.image_id.startswith("TCGA-NH"))
    small = (rescale(im.rgb, im.mpp / 0.5, channel_axis=2, anti_aliasing=True) * 255).astype(np.uint8)
    n = int(np.ceil(side_mm * 2000 / small.shape[0]))
    tiled = np.tile(small, (n, n, 1))
    side_px = int(side_mm * 2000)
    return np.ascontiguousarray(tiled[:side_px, :side_px])


def tiles_for(side_mm: float, cfg: BuildConfig) -> pl.DataFrame:
    t = cfg.tile_size_um
    n = int(side_mm * 1000 // t)
    rng = np.random.default_rng(0)
    classes = rng.choice(["TUM", "STR", "LYM"], size=n * n, p=[0.5, 0.4, 0.1])
    rows = []
    for k, (r, c) in enumerate((r, c) for r in range(n) for c in range(n)):
        row = {"x_um": c * t, "y_um": r * t, "tissue_fraction": 1.0, "qc_pass": True, "pred_class": str(classes[k])}
        row.update({f"prob_{x}": float(x == classes[k]) for x in KATHER_CLASSES})
        rows.append(row)
    return pl.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mm", type=float, default=1.0, help="side of the square tissue area, mm")
    ap.add_argument("--cellpose-model", default=None)
    ap.add_argument("--torchscript-model", default=None)
    args = ap.parse_args()
    import torch

    print(f"torch threads {torch.get_num_threads()}, cuda {torch.cuda.is_available()}")
    cfg = BuildConfig(nuclei_backend="classical")
    slide = MosaicSlide(mosaic(args.mm))
    tiles = tiles_for(args.mm, cfg)
    area_mm2 = tiles.height * (cfg.tile_size_um / 1000) ** 2
    rgb = slide.rgb[:1000, :1000]
    backends = [("classical", None)]
    if args.cellpose_model:
        backends.append(("cellpose", args.cellpose_model))
    if args.torchscript_model:
        backends.append(("torchscript", args.torchscript_model))
    for name, model in backends:
        seg = get_segmenter(name, model)
        t0 = time.perf_counter()
        n = int(seg.segment(rgb, 0.5).max())
        dt = time.perf_counter() - t0
        print(f"segment {name}: {n / dt:,.0f} nuclei/s ({n} nuclei on 0.25 mm² in {dt:.2f} s)")
    for label, clf in (("rule", RuleCellClassifier()), ("default-classifier", load_cell_classifier())):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            n = segment_slide(slide, tiles, cfg, Path(tmp) / "nuclei.parquet", classifier=clf)
            t_seg = time.perf_counter() - t0
            nuclei = pl.read_parquet(Path(tmp) / "nuclei.parquet")
            t0 = time.perf_counter()
            til_features(tiles, nuclei, cfg)
            t_til = time.perf_counter() - t0
        total = t_seg + t_til
        print(f"nuclei+TIL classical/{label}: {area_mm2:.2f} mm², {n:,} nuclei, {n / t_seg:,.0f} nuclei/s, "
              f"{total / area_mm2:.1f} s/mm² (TIL {t_til:.2f} s) -> 1 cm²: {100 * total / area_mm2 / 60:.1f} min")


if __name__ == "__main__":
    main()
