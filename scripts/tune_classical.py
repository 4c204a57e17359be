"""Tune the classical nucleus segmenter by leave-one-image-out random search on MoNuSeg.

For each held-out image the parameter set with the best mean AJI on the other images is scored on
the held-out one; the reported number is the mean held-out AJI. The final defaults are the best
set on all images. Usage::

    python scripts/tune_classical.py ../shared/data/monuseg --n 60 --seed 0 --out /tmp/tune.json

Trial 0 is the shipped default set; the others are drawn (seeded) from ``SPACE``. The JSON also
holds Dice and PQ of each held-out image under the set chosen without it.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from immunodig.nuclei.classical import ClassicalSegmenter
from immunodig.nuclei.datasets import read_monuseg
from immunodig.nuclei.evaluation import aji, dice, panoptic_quality

SPACE = {
    "smooth_um": [0.0, 0.0, 0.25],
    "threshold_scale": [0.9, 1.0, 1.1, 1.2],
    "local_window_um": [10.0, 15.0, 20.0],
    "marker_h_um": [0.5, 0.7, 1.0],
    "marker_smooth_um": [0.125, 0.25, 0.375],
    "marker_od_weight": [0.0, 1.0, 2.0, 4.0],
    "min_area_um2": [4.0, 8.0, 12.0],
    "fill_holes_um2": [5.0, 20.0],
    "refine_um": [0.0, 0.5, 1.0, 1.5],
    "refine_level": [0.2, 0.3, 0.4, 0.5],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    images = read_monuseg(args.folder)
    rng = np.random.default_rng(args.seed)
    trials = [{}] + [{k: float(rng.choice(v)) for k, v in SPACE.items()} for _ in range(args.n)]
    scores = np.zeros((len(trials), len(images)))
    for t, params in enumerate(trials):
        seg = ClassicalSegmenter(**params)
        scores[t] = [aji(im.instances, seg.segment(im.rgb, im.mpp)) for im in images]
        print(t, params, np.round(scores[t], 3), round(scores[t].mean(), 3), flush=True)
    held = []
    for i, im in enumerate(images):
        others = [j for j in range(len(images)) if j != i]
        best = int(scores[:, others].mean(axis=1).argmax())
        labels = ClassicalSegmenter(**trials[best]).segment(im.rgb, im.mpp)
        pq = panoptic_quality(im.instances, labels)
        held.append({"image_id": im.image_id, "aji": scores[best, i], "dice": dice(im.instances, labels),
                     "pq": pq.pq, "dq": pq.dq, "sq": pq.sq, "params": trials[best]})
    best_all = int(scores.mean(axis=1).argmax())
    result = {
        "loio_aji": held,
        "loio_mean_aji": float(np.mean([h["aji"] for h in held])),
        "loio_mean_dice": float(np.mean([h["dice"] for h in held])),
        "loio_mean_pq": float(np.mean([h["pq"] for h in held])),
        "n_trials": len(trials),
        "seed": args.seed,
        "best_params": trials[best_all],
        "best_in_sample_aji": scores[best_all].tolist(),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
