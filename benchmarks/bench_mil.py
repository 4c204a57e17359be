"""MIL training time per cross-validation fold for a cohort of 200 patients.

Bags of generated embeddings (every second patient holds a few shifted tiles) sized like a real
cohort: ``--tiles`` tiles per patient on average (a 1 cm² tumour section at 112 µm tiles holds
about 8,000; bags are subsampled to ``max_tiles`` = 512 per step in training, all tiles are used
in prediction). Prints, per model and embedding dimension, the seconds of one outer fold (fit on
4/5 of the patients with the default MILParams + prediction of all patients) and the fold's AUC.

Usage::

    python benchmarks/bench_mil.py [--patients 200] [--tiles 2000] [--dims 64,384]
        [--models abmil,transmil,meanpool] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def _bags(n: int, tiles: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=dim)
    direction *= 3.0 / np.linalg.norm(direction)
    bags, labels = [], []
    for i in range(n):
        bag = rng.normal(size=(int(rng.integers(tiles // 2, 3 * tiles // 2)), dim)).astype(np.float32)
        if i % 2:
            bag[: int(rng.integers(5, 30))] += direction
        bags.append(bag)
        labels.append(i % 2)
    return bags, np.array(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--tiles", type=int, default=2000)
    parser.add_argument("--dims", default="64,384")
    parser.add_argument("--models", default="abmil,transmil,meanpool")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from sklearn.metrics import roc_auc_score

    from immunodig.mil import MILParams, fit_mil, predict_bags

    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {args.threads}; load average {os.getloadavg()[0]:.2f}")
    print(f"{args.patients} patients, ~{args.tiles} tiles each; defaults {MILParams().to_dict()}")
    for dim in (int(d) for d in args.dims.split(",")):
        bags, labels = _bags(args.patients, args.tiles, dim)
        train = np.arange(args.patients) % 5 != 0
        idx_train, idx_test = np.flatnonzero(train), np.flatnonzero(~train)
        for model in args.models.split(","):
            t0 = time.perf_counter()
            fitted = fit_mil([bags[i] for i in idx_train], labels[idx_train], model)
            t_fit = time.perf_counter() - t0
            t0 = time.perf_counter()
            scores, _ = predict_bags(fitted, bags)
            t_pred = time.perf_counter() - t0
            auc = roc_auc_score(labels[idx_test], scores[idx_test])
            print(f"dim {dim:4d} {model:9s}: fold {t_fit + t_pred:6.1f} s (fit {t_fit:.1f} s, "
                  f"predict {args.patients} bags {t_pred:.1f} s), test AUC {auc:.3f}")


if __name__ == "__main__":
    main()
