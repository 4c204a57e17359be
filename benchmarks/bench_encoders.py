"""Tile-encoder throughput on one generated slide: the shipped default, ViT-S/16 and ViT-B/16.

Prints tiles/s for
  1. reading alone (tiles centred on the grid at 0.5 µm/px, 224 px: the decode limit of the slide),
  2. each encoder on tiles already in memory (``Encoder.embed``: the model limit),
  3. each encoder end to end (``immunodig.embeddings.embed_slide``: read, embed, float16 memory map),
for the shipped default and timm ``vit_small_patch16_224`` / ``vit_base_patch16_224`` created
locally with random weights (speed only; nothing is downloaded) and loaded through ``load_encoder``.
On CUDA the encoders run with bf16 autocast and pinned memory.

Usage::

    python benchmarks/bench_encoders.py [--slide PATH] [--slide-mm 4] [--max-tiles 256]
        [--vit-tiles 64] [--workers 0] [--threads 1] [--device cpu|cuda] [--batch 32]

Without ``--slide`` a slide of ``--slide-mm`` mm at 0.5 µm/px is generated once into
``--cache-dir`` and reused.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ENCODERS: tuple[str | None, ...] = (None, "vit_small_patch16_224", "vit_base_patch16_224")


def _slide(args: argparse.Namespace) -> Path:
    if args.slide:
        return Path(args.slide)
    from immunodig.synthetic.slide import make_slide

    path = Path(args.cache_dir) / f"bench_{args.slide_mm:g}mm_seed7.tiff"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        make_slide(path, seed=7, slide_mm=args.slide_mm, mpp=0.5)
        print(f"generated {path} in {time.perf_counter() - t:.0f} s")
    return path


def _tiles(path: Path, max_tiles: int) -> pl.DataFrame:
    from immunodig.slides import Slide, tile_grid, tissue_mask

    with Slide(path) as s:
        grid = tile_grid(tissue_mask(s, 8.0), s.mpp, s.dimensions, 0.5, 224, 0.5)
        print(f"slide {path.name}: {s.dimensions[0]} x {s.dimensions[1]} px, {s.level_count} levels, "
              f"{int((~grid['qc_background']).sum())} tissue tiles")
    grid = grid.filter(~pl.col("qc_background"))
    if grid.height > max_tiles:  # a seeded subset spread over the whole slide
        grid = grid.sample(max_tiles, seed=0).sort(["row", "col"])
    return grid.with_columns(qc_pass=pl.lit(True), pred_class=pl.lit(None, dtype=pl.Utf8))


def _loader(path: Path, tiles: pl.DataFrame, workers: int, batch: int, pin: bool):
    from torch.utils.data import DataLoader

    from immunodig.embeddings.slide_embeddings import _CentredTiles

    cx = tiles["x_px"].to_numpy() + 0.5 * tiles["w_px"].to_numpy()
    cy = tiles["y_px"].to_numpy() + 0.5 * tiles["h_px"].to_numpy()
    return DataLoader(_CentredTiles(str(path), None, cx, cy, 224, 0.5), batch_size=batch, num_workers=workers,
                      pin_memory=pin, prefetch_factor=4 if workers else None)


def _encoder(arch: str | None, folder: Path, device: str, batch: int):
    from immunodig.embeddings import load_encoder

    if arch is None:
        return load_encoder(device=device, batch_size=batch)
    import timm
    import torch

    torch.manual_seed(0)
    path = folder / f"{arch}.pth"
    torch.save(timm.create_model(arch, pretrained=False, num_classes=0).state_dict(), path)
    return load_encoder(path, architecture=arch, device=device, batch_size=batch, name=f"{arch} (random)")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide")
    ap.add_argument("--slide-mm", type=float, default=4.0)
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "immunodig_bench"))
    ap.add_argument("--max-tiles", type=int, default=256, help="tiles timed for reading and the default")
    ap.add_argument("--vit-tiles", type=int, default=64, help="tiles timed for the ViTs (slow on a CPU)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes reading tiles")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()

    import torch

    from immunodig.embeddings import embed_slide

    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"device {args.device}, {args.threads} thread(s), {args.workers} reader worker(s), batch {args.batch}")
    path = _slide(args)
    tiles = _tiles(path, args.max_tiles)
    cuda = args.device.startswith("cuda")

    t = time.perf_counter()
    pixels = [b.numpy() for b in _loader(path, tiles, args.workers, args.batch, cuda)]
    read_rate = tiles.height / (time.perf_counter() - t)
    print(f"read only: {read_rate:.0f} tiles/s ({tiles.height} tiles)")
    pixels = np.concatenate(pixels)

    with tempfile.TemporaryDirectory() as tmp:
        for arch in ENCODERS:
            enc = _encoder(arch, Path(tmp), args.device, args.batch)
            n = args.max_tiles if arch is None else min(args.vit_tiles, args.max_tiles)
            enc.embed(pixels[:args.batch])  # warm-up
            _sync(args.device)
            t = time.perf_counter()
            enc.embed(pixels[:n])
            _sync(args.device)
            model_rate = n / (time.perf_counter() - t)
            sub = tiles.head(n)
            out = Path(tmp) / (arch or "default")
            out.mkdir()
            t = time.perf_counter()
            embed_slide(path, sub, enc, out, num_workers=args.workers)
            e2e_rate = n / (time.perf_counter() - t)
            print(f"{enc.name:<36} dim {enc.dim:>4}: model {model_rate:8.1f} tiles/s, end to end "
                  f"{e2e_rate:8.1f} tiles/s ({n} tiles; read-only rate {read_rate:.0f})", flush=True)


if __name__ == "__main__":
    main()
