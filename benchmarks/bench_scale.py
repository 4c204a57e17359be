"""Scale-out benchmark: slides/hour for 1 and 2 workers, and store ingest rate.

Part 1 generates a demo cohort and builds it twice from scratch: with one process
(``--executor debug``, one torch thread) and with a local pool of two worker processes (one
thread each). It reports slides/hour and the scaling efficiency ``rate(2) / (2 * rate(1))``.

Part 2 measures the single writer: it clones the per-slide folders of part 1 into ``--folders``
folders with new slide ids (``slide.json``, ``features.parquet``, ``manifest.json`` rewritten;
no slide processing) and times ``ingest_work_dir`` into a fresh store (slides/s), then a second
pass over the same folders (all unchanged: the resume/no-op path).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_scale.py --out /tmp/bench_scale

Prints a Markdown table and writes ``<out>/bench_scale.json``. Timings depend on the machine
and on what else runs on it: the load average before each part is recorded alongside.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def build_rate(slides_dir: Path, manifest: Path, out: Path, executor: str,
               workers: int) -> dict:
    """Build every slide from scratch; return wall time and slides/hour."""
    from immunodig.pipeline.build import build_features

    store, work = out / f"{executor}{workers}.duckdb", out / f"{executor}{workers}_slides"
    store.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    summary = build_features([slides_dir], store, manifest=manifest, work_dir=work,
                             workers=workers, executor=executor, show_progress=False)
    wall_s = time.perf_counter() - t0
    cpu_s = _cpu_s() - cpu0
    n = summary.count("done")
    if not summary.ok:
        raise SystemExit(f"{summary.count('failed')} slides failed: {summary.failed[0].message}")
    return {"executor": executor, "workers": workers, "slides": n, "wall_s": round(wall_s, 2),
            "slides_per_hour": round(3600 * n / wall_s, 1), "load_before": round(load, 2),
            "cpu_s_per_slide": round(cpu_s / n, 2),
            "work_dir": str(work)}


def _cpu_s() -> float:
    """CPU seconds used by this process and its reaped children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def clone_folders(templates: list[Path], work: Path, n: int) -> None:
    """Write ``n`` per-slide folders with fresh slide ids, cycling over ``templates``."""
    from immunodig import slide_folder as sf
    from immunodig.io import write_json_atomic
    from immunodig.provenance import file_sha256

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for i in range(n):
        src = templates[i % len(templates)]
        slide_id = "s_" + hashlib.sha256(f"bench-{i}".encode()).hexdigest()[:16]
        dst = work / slide_id
        dst.mkdir()
        manifest = json.loads((src / sf.MANIFEST_JSON).read_text())
        for name in manifest["files"]:
            if name != sf.SLIDE_JSON:
                shutil.copyfile(src / name, dst / name)
        slide = json.loads((src / sf.SLIDE_JSON).read_text())
        slide.update(slide_id=slide_id, path=f"/bench/{slide_id}.tiff")
        write_json_atomic(dst / sf.SLIDE_JSON, slide)
        manifest["slide_id"] = slide_id
        manifest["files"][sf.SLIDE_JSON] = file_sha256(dst / sf.SLIDE_JSON)
        write_json_atomic(dst / sf.MANIFEST_JSON, manifest)


def ingest_rate(templates: list[Path], out: Path, n: int) -> dict:
    """Time the single-writer ingest of ``n`` cloned folders, first load and no-op reload."""
    from immunodig.pipeline.status import ingest_work_dir
    from immunodig.store import Store

    work, store = out / "ingest_slides", out / "ingest.duckdb"
    clone_folders(templates, work, n)
    store.unlink(missing_ok=True)
    with Store.open(store):
        pass  # create and migrate outside the timing
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    counts = ingest_work_dir(store, work)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ingest_work_dir(store, work)
    again_s = time.perf_counter() - t0
    with Store.open(store, read_only=True) as s:
        rows = s.counts()
    if counts["complete"] != n or rows["slides"] != n:
        raise SystemExit(f"ingest loaded {rows['slides']} slides of {n}")
    return {"folders": n, "first_s": round(first_s, 2),
            "slides_per_s": round(n / first_s, 1), "reingest_s": round(again_s, 2),
            "reingest_slides_per_s": round(n / again_s, 1),
            "feature_rows": rows["slide_features"], "load_before": round(load, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_scale"))
    parser.add_argument("--patients", type=int, default=3, help="demo patients (1-3 slides each)")
    parser.add_argument("--slide-mm", type=float, default=3.0, help="side of each demo slide")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--folders", type=int, default=1000, help="folders for the ingest part")
    args = parser.parse_args()

    from immunodig.synthetic.cohort import make_cohort

    args.out.mkdir(parents=True, exist_ok=True)
    cohort = make_cohort(args.out / "cohort", args.patients, args.seed, slide_mm=args.slide_mm,
                         cd3_fraction=0.0)
    one = build_rate(cohort.slides_dir, cohort.manifest, args.out, "debug", 1)
    two = build_rate(cohort.slides_dir, cohort.manifest, args.out, "local", 2)
    efficiency = two["slides_per_hour"] / (2 * one["slides_per_hour"])
    templates = sorted(p for p in Path(one["work_dir"]).glob("s_*") if p.is_dir())
    ingest = ingest_rate(templates, args.out, args.folders)

    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "processor": platform.processor() or platform.machine()},
              "cohort": {"patients": args.patients, "slides": one["slides"],
                         "slide_mm": args.slide_mm, "seed": args.seed},
              "build": [one, two], "scaling_efficiency": round(efficiency, 3), "ingest": ingest}
    (args.out / "bench_scale.json").write_text(json.dumps(result, indent=2))
    print("| workers | slides | wall (s) | slides/hour | CPU s/slide | load before |\n"
          "|---|---|---|---|---|---|")
    for r in (one, two):
        print(f"| {r['workers']} ({r['executor']}) | {r['slides']} | {r['wall_s']} | "
              f"{r['slides_per_hour']} | {r['cpu_s_per_slide']} | {r['load_before']} |")
    print(f"\nscaling efficiency 2 workers: {efficiency:.2f}")
    print(f"ingest: {ingest['folders']} folders in {ingest['first_s']} s = "
          f"{ingest['slides_per_s']} slides/s; no-op re-ingest {ingest['reingest_slides_per_s']} "
          f"slides/s; {ingest['feature_rows']} feature rows")


if __name__ == "__main__":
    main()
