"""Structure segmenter on generated slides with TLS and gland truth (the figures of docs/structures.md).

1. generates ``--train + --test`` slides (``immunodig.synthetic.make_slide``; each slide's truth
   ``structures.geojson`` is put beside the training slides as ``<name>.geojson``);
2. ``python cli.py train-segmenter OUT/train --classes TLS,Gland --instances watershed ...`` on the
   training slides (watershed with seeds of ``--marker-h`` µm splits glands that the network joins
   across a thin septum);
3. ``python cli.py build-features OUT/test --structure-model MODEL ...`` on the others;
4. compares each test slide's ``structures.parquet`` with its truth
   (``immunodig.structures.comparison``: counts, total areas, matched objects at IoU >= 0.5 or
   centroid inside) and prints the table, per slide and pooled, with the tolerance check.

Usage::

    python scripts/validate_structures_synthetic.py --out /tmp/synstruct [--train 4 --test 3]
        [--slide-mm 1.2] [--mpp 1.0] [--epochs 30] [--patch 128] [--marker-h 4] [--threads 1] [--seed 0]
        [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("TLS", "Gland")
#: Objects smaller than this (µm²) are left out of both sides of the comparison.
MIN_AREA_UM2 = 300.0
#: Stated tolerance on the pooled test slides: |predicted / truth - 1| for counts and areas.
COUNT_TOLERANCE = 0.20
AREA_TOLERANCE = 0.25
#: ... and pooled matched-object recall and precision at least this.
MATCH_FLOOR = 0.8


def slide_params(i: int, seed: int):
    """Composition of slide ``i``: a large tumour bed and frequent aggregates, stroma share varied."""
    import numpy as np

    from immunodig.synthetic import LayoutParams, SlideParams

    rng = np.random.default_rng([seed, i])
    return SlideParams(LayoutParams(stroma_fraction=float(rng.uniform(0.15, 0.4)), tls_per_mm2=4.0,
                                    tumour_radius_frac=float(rng.uniform(0.27, 0.33))))


def generate(out: Path, n_train: int, n_test: int, slide_mm: float, seed: int) -> list[str]:
    """Slides ``out/train/<name>.tiff`` (+ ``.geojson``) and ``out/test/<name>.tiff``; truth in
    ``out/truth/<name>/``. Returns the test slide names."""
    from immunodig.synthetic import make_slide

    for sub in ("train", "test", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    test = []
    for i in range(n_train + n_test):
        name = f"syn{i:02d}"
        part = "train" if i < n_train else "test"
        make_slide(out / part / f"{name}.tiff", seed * 1000 + i, slide_mm, 0.5, slide_params(i, seed),
                   truth_dir=out / "truth" / name)
        if part == "train":
            shutil.copyfile(out / "truth" / name / "structures.geojson", out / "train" / f"{name}.geojson")
        else:
            test.append(name)
    (out / "test.csv").write_text("file,patient_id\n" + "".join(f"{n}.tiff,P{n}\n" for n in test))
    return test


def cli(*args: str) -> float:
    """Run ``python cli.py ARGS`` from the repository (this checkout's code); wall seconds."""
    cmd = [sys.executable, str(ROOT / "cli.py"), *args]
    print("$ python cli.py " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t0


def compare(out: Path, min_area_um2: float) -> dict[str, dict]:
    """Per test slide: the comparison of its structures.parquet with its truth."""
    import polars as pl

    from immunodig import slide_folder as sf
    from immunodig.structures.comparison import compare_structures, table_structures
    from immunodig.structures.geojson import read_geojson

    per_slide = {}
    for folder in sorted((out / "test_slides").iterdir()):
        if not (folder / sf.STRUCTURES_PARQUET).is_file():
            continue
        record = sf.read_slide_record(folder)
        name = Path(record["path"]).stem
        truth = [(a.class_name, a.geometry) for a in read_geojson(out / "truth" / name / "structures.geojson")
                 if a.is_structure]
        pred = table_structures(pl.read_parquet(folder / sf.STRUCTURES_PARQUET))
        per_slide[name] = compare_structures(truth, pred, record["mpp_x"], CLASSES, min_area_um2)
    return per_slide


def format_table(per_slide: dict[str, dict], pooled: dict[str, dict]) -> str:
    head = (f"{'slide':<8} {'class':<6} {'n truth':>7} {'n pred':>6} {'count':>6} {'area truth':>10} "
            f"{'area pred':>9} {'area':>6} {'recall':>6} {'prec.':>6} {'IoU':>5}")
    lines = [head, "-" * len(head)]
    for name, res in [*per_slide.items(), ("pooled", pooled)]:
        for cls, m in res.items():
            lines.append(f"{name:<8} {cls:<6} {m['n_reference']:>7} {m['n_predicted']:>6} {m['count_ratio']:>6.3f} "
                         f"{m['area_reference_mm2']:>10.4f} {m['area_predicted_mm2']:>9.4f} {m['area_ratio']:>6.3f} "
                         f"{m['recall']:>6.3f} {m['precision']:>6.3f} {m['matched_iou_mean']:>5.3f}")
    return "\n".join(lines)


def within_tolerance(pooled: dict[str, dict]) -> dict[str, bool]:
    """Whether each class's pooled count, area, recall and precision lie within the stated tolerance."""
    return {cls: abs(m["count_ratio"] - 1) <= COUNT_TOLERANCE and abs(m["area_ratio"] - 1) <= AREA_TOLERANCE
            and min(m["recall"], m["precision"]) >= MATCH_FLOOR for cls, m in pooled.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Working folder (created).")
    parser.add_argument("--train", type=int, default=4, help="Training slides.")
    parser.add_argument("--test", type=int, default=3, help="Test slides.")
    parser.add_argument("--slide-mm", type=float, default=1.2)
    parser.add_argument("--mpp", type=float, default=1.0, help="The model's µm/px.")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--marker-h", type=float, default=4.0,
                        help="Watershed seed height (µm) splitting glands the network joins across a septum.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-area-um2", type=float, default=MIN_AREA_UM2)
    parser.add_argument("--json", type=Path, default=None, help="Write every number here.")
    args = parser.parse_args(argv)

    from immunodig.structures.comparison import pool_comparisons

    out = args.out
    t0 = time.perf_counter()
    generate(out, args.train, args.test, args.slide_mm, args.seed)
    t_gen = time.perf_counter() - t0
    model = out / "model" / "structures.pt"
    t_train = cli("train-segmenter", str(out / "train"), "--out", str(model), "--mpp", str(args.mpp),
                  "--classes", ",".join(CLASSES), "--epochs", str(args.epochs), "--patch", str(args.patch),
                  "--instances", "watershed", "--marker-h", str(args.marker_h), "--threads", str(args.threads),
                  "--seed", str(args.seed), "--licence", "synthetic (immunodig)")
    t_build = cli("build-features", str(out / "test"), "--store", str(out / "test.duckdb"), "--manifest",
                  str(out / "test.csv"), "--structure-model", str(model), "--nuclei-backend", "none", "--quiet")
    per_slide = compare(out, args.min_area_um2)
    pooled = pool_comparisons(list(per_slide.values()))
    ok = within_tolerance(pooled)
    print(format_table(per_slide, pooled))
    verdict = ", ".join(f"{c} {'ok' if v else 'OUTSIDE'}" for c, v in ok.items())
    print(f"min object area {args.min_area_um2:g} µm²; tolerance: pooled counts within ±{COUNT_TOLERANCE:.0%}, "
          f"areas within ±{AREA_TOLERANCE:.0%}, recall and precision >= {MATCH_FLOOR:g}: {verdict}")
    print(f"generation {t_gen:.0f} s, training {t_train:.0f} s, build-features {t_build:.0f} s")
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "per_slide": per_slide, "pooled": pooled,
              "within_tolerance": ok, "seconds": {"generation": t_gen, "training": t_train, "build": t_build}}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
