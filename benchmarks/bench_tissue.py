"""Tissue-classification throughput on one generated slide (>= 20,000 x 20,000 px).

Prints tiles/s for
  1. reading alone (DataLoader workers decoding tiles at 0.5 µm/px: the decode limit),
  2. read + classify end to end (immunodig.tissue.inference.classify_tiles),
  3. a naive loop (one Slide.read and one model call per tile, one process),
for the shipped default (feature) model and for a CNN (resnet18, random weights: speed only).

Usage::

    python benchmarks/bench_tissue.py [--slide PATH] [--max-tiles 1500] [--workers 2] [--device cpu]

Without ``--slide`` a 10 mm x 10 mm slide at 0.5 µm/px (20,000 x 20,000 px) is generated once into
``--cache-dir`` and reused.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import polars as pl


def _slide(args: argparse.Namespace) -> Path:
    if args.slide:
        return Path(args.slide)
    from immunodig.synthetic.slide import make_slide

    path = Path(args.cache_dir) / "bench_10mm_seed7.tiff"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        make_slide(path, seed=7, slide_mm=10.0, mpp=0.5)
        print(f"generated {path} in {time.perf_counter() - t:.0f} s")
    return path


def _tiles(path: Path, max_tiles: int, seed: int) -> pl.DataFrame:
    from immunodig.slides import Slide, tile_grid, tissue_mask

    with Slide(path) as s:
        grid = tile_grid(tissue_mask(s, 8.0), s.mpp, s.dimensions, 0.5, 224, 0.5)
        print(f"slide {path.name}: {s.dimensions[0]} x {s.dimensions[1]} px, {s.level_count} levels, "
              f"{grid.height} grid tiles, {int((~grid['qc_background']).sum())} on tissue")
    grid = grid.filter(~pl.col("qc_background"))
    if grid.height > max_tiles:  # a random, seeded subset spread over the whole slide
        grid = grid.sample(max_tiles, seed=seed).sort(["row", "col"])
    return grid.with_columns(qc_pass=pl.lit(True))


def _read_only(path: Path, tiles: pl.DataFrame, workers: int, batch: int) -> float:
    from torch.utils.data import DataLoader

    from immunodig.tissue.classifier import _as_uint8
    from immunodig.tissue.inference import _SlideTiles

    ds = _SlideTiles(str(path), None, tiles["x_px"].to_numpy(), tiles["y_px"].to_numpy(), 224, 0.5,
                     _as_uint8, compute_qc=False)
    dl = DataLoader(ds, batch_size=batch, num_workers=workers,
                    prefetch_factor=4 if workers else None)
    t = time.perf_counter()
    n = sum(len(b["i"]) for b in dl)
    return n / (time.perf_counter() - t)


def _end_to_end(path: Path, tiles: pl.DataFrame, clf, workers: int, batch: int, device: str) -> float:
    from immunodig.tissue.inference import classify_tiles

    t = time.perf_counter()
    out = classify_tiles(path, tiles, clf, num_workers=workers, batch_size=batch, device=device)
    dt = time.perf_counter() - t
    assert out["pred_class"].null_count() == 0
    return tiles.height / dt


def _naive(path: Path, tiles: pl.DataFrame, clf, n: int) -> float:
    from immunodig.slides import Slide

    sub = tiles.head(n)
    with Slide(path) as s:
        t = time.perf_counter()
        for x, y in zip(sub["x_px"], sub["y_px"]):
            clf.predict_proba(s.read(x, y, (224, 224), 0.5)[None])
        return sub.height / (time.perf_counter() - t)


def _cnn(device: str):
    from immunodig.tissue.checkpoint import ModelMetadata, save_checkpoint
    from immunodig.tissue.classifier import load_tissue_classifier
    from immunodig.tissue.cnn_training import IMAGENET_MEAN, IMAGENET_STD
    from immunodig.tissue.networks import build_network
    from immunodig.vocab import KATHER_CLASSES

    path = Path(tempfile.mkdtemp()) / "resnet18_random.pt"
    net = build_network("resnet18", 9)
    save_checkpoint(path, ModelMetadata("resnet18", list(KATHER_CLASSES), mean=IMAGENET_MEAN,
                                        std=IMAGENET_STD), net.state_dict())
    return load_tissue_classifier(path, device=device)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", help="existing slide (default: generate a 20,000 px one)")
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "immunodig-bench"))
    ap.add_argument("--max-tiles", type=int, default=1500)
    ap.add_argument("--naive-tiles", type=int, default=150)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from immunodig.tissue.classifier import load_tissue_classifier

    path = _slide(args)
    tiles = _tiles(path, args.max_tiles, args.seed)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "-"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device} {gpu}")
    print(f"tiles timed: {tiles.height} (224 px at 0.5 µm/px), workers {args.workers}, batch {args.batch}")
    read = _read_only(path, tiles, args.workers, args.batch)
    print(f"read only                      {read:8.1f} tiles/s")
    for name, clf in (("default (features-logistic)", load_tissue_classifier(device=args.device)),
                      ("resnet18 (CNN)", _cnn(args.device))):
        _naive(path, tiles, clf, 3)  # warm-up
        e2e = _end_to_end(path, tiles, clf, args.workers, args.batch, args.device)
        naive = _naive(path, tiles, clf, args.naive_tiles)
        print(f"{name:<28} end to end {e2e:8.1f} tiles/s ({e2e / read:4.2f} x read-only)   "
              f"naive loop {naive:7.1f} tiles/s   end-to-end / naive = {e2e / naive:4.1f} x")


if __name__ == "__main__":
    main()
