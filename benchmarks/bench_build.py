"""Seconds per slide for build-features on generated demo slides.

Usage: ``python benchmarks/bench_build.py [--slides 4] [--slide-mm 3] [--workers 1] [--nuclei]``.
Prints wall-clock seconds per slide and tiles per second; nothing is asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Generate slides, build features, print timings."""
    import polars as pl

    from immunodig.config import BuildConfig
    from immunodig.pipeline.build import build_features
    from immunodig.store import query
    from immunodig.synthetic import make_cohort

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=3)
    ap.add_argument("--slide-mm", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--nuclei", action="store_true", help="include the classical nuclei stage")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cohort = make_cohort(Path(tmp) / "c", n_patients=args.patients, seed=1,
                             slide_mm=args.slide_mm, cd3_fraction=0.0)
        t_gen = time.perf_counter() - t0
        cfg = BuildConfig(nuclei_backend="classical" if args.nuclei else None)
        store = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        summary = build_features([cohort.slides_dir], store, cfg, manifest=cohort.manifest,
                                 workers=args.workers, show_progress=False)
        t_build = time.perf_counter() - t0
        n = summary.count("done")
        stored = query(store, "select count(*) as n from slides").item()
        n_tiles = sum(pl.read_parquet(Path(o.folder) / "tiles.parquet").height
                      for o in summary.outcomes if o.status == "done")
        print(f"generated {n} slides of {args.slide_mm} mm in {t_gen:.1f} s")
        print(f"build-features ({'with' if args.nuclei else 'without'} nuclei, "
              f"{args.workers} worker(s)): {t_build:.1f} s total, {t_build / max(n, 1):.2f} s/slide, "
              f"{n_tiles / t_build:.1f} tiles/s over {n_tiles} tiles; {stored} slides stored")


if __name__ == "__main__":
    main()
