"""Wall time of ``python cli.py demo`` step by step, with the machine and its load.

Runs :func:`immunodig.demo.run_demo` (the README's first command without the install) into a
temporary folder and prints the wall seconds of each step, the build's seconds per stage (summed
over slides), the cohort and the headline metrics against the issue's bars (best non-clinical
resistance AUC >= 0.70 and PFS C-index >= 0.65, lower CI bounds > 0.5). Usage::

    python benchmarks/bench_demo.py [--patients 60] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="output folder to keep")
    args = parser.parse_args()
    from immunodig.demo import DEMO_PATIENTS, format_metrics, run_demo

    n = args.patients or DEMO_PATIENTS
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average before {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "demo"
        t0 = time.monotonic()
        result = run_demo(out, n_patients=n, workers=args.workers, show_progress=False)
        wall = time.monotonic() - t0
    print(format_metrics(result.metrics))
    print("cohort:", result.cohort)
    print("step wall s:", result.step_seconds)
    print(f"total wall {wall:.0f} s ({wall / 60:.1f} min), load average after "
          f"{os.getloadavg()[0]:.2f}")
    non_clinical = [m for m in result.metrics if m.get("feature_set") != "clinical"]
    auc = max((m for m in non_clinical if "auc" in m), key=lambda m: m["auc"])
    cidx = max((m for m in non_clinical if "c_index" in m), key=lambda m: m["c_index"])
    print(f"best non-clinical AUC {auc['auc']:.3f} (CI {auc['auc_ci'][0]:.3f}-{auc['auc_ci'][1]:.3f}, "
          f"{auc['feature_set']}); bar >= 0.70 with lower bound > 0.5")
    print(f"best non-clinical C-index {cidx['c_index']:.3f} (CI {cidx['c_index_ci'][0]:.3f}-"
          f"{cidx['c_index_ci'][1]:.3f}, {cidx['feature_set']}); bar >= 0.65 with lower bound > 0.5")


if __name__ == "__main__":
    main()
