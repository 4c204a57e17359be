"""Train the shipped cell classifier on CRCHistoPhenotypes, with image-grouped cross-validation.

Usage (the shipped default)::

    python scripts/train_default_cell_classifier.py ../shared/data/crchistophenotypes \
        --kind gbm --cv 5 --json docs/nuclei_results/cell_classifier_cv.json \
        --out immunodig/assets/nuclei/nucleus_gbm_crc.pkl

``--cv K`` first trains K models on K-1 folds of images (folds drawn at random by image, seed
``--seed``) and scores inflammatory detection on the held-out images (match radius 6 µm), both
with the model's own detector and with the build-features pipeline (classical segmentation +
classification); the pooled F1 gets an image-bootstrap 95 % CI. ``--out`` then trains on all
images and writes the model. ``--kind cnn`` trains the small FCN instead (``--steps``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from immunodig.nuclei.cell_classifier import CRC_LICENCE, CellNetClassifier
from immunodig.nuclei.classical import ClassicalSegmenter
from immunodig.nuclei.datasets import read_crchistophenotypes
from immunodig.nuclei.lymphocyte_eval import evaluate_lymphocytes
from immunodig.nuclei.nucleus_gbm import NucleusGBMClassifier


def make_model(kind: str, width: int):
    """A fresh, unfitted classifier of ``kind`` (gbm | cnn)."""
    return NucleusGBMClassifier() if kind == "gbm" else CellNetClassifier(width=width)


def fit(model, images, steps: int, seed: int):
    """Fit either kind of model."""
    if isinstance(model, CellNetClassifier):
        return model.fit(images, steps=steps, seed=seed, log_every=250)
    return model.fit(images, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--kind", choices=("gbm", "cnn"), default="gbm")
    ap.add_argument("--cv", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    images = read_crchistophenotypes(args.folder)
    result: dict = {"kind": args.kind, "n_images": len(images), "seed": args.seed}
    if args.cv:
        rng = np.random.default_rng(args.seed)
        folds = rng.permutation(len(images)) % args.cv
        per_image: dict[str, list] = {"detector": [], "pipeline": []}
        confusion = {"detector": 0, "pipeline": 0}
        for k in range(args.cv):
            train = [im for im, f in zip(images, folds) if f != k]
            test = [im for im, f in zip(images, folds) if f == k]
            model = fit(make_model(args.kind, args.width), train, args.steps, args.seed + k)
            for method, seg in (("detector", None), ("pipeline", ClassicalSegmenter())):
                rep = evaluate_lymphocytes(test, detector=model, segmenter=seg)
                for row in rep["per_image"]:
                    row["fold"] = k
                per_image[method] += rep["per_image"]
                confusion[method] = confusion[method] + np.array(rep["confusion"]["counts"])
                print(f"fold {k} {method}: f1 {rep['f1']:.3f} p {rep['precision']:.3f} r {rep['recall']:.3f}", flush=True)
        result["cv"] = {
            "k": args.cv,
            "scheme": "image-grouped K-fold (random image folds)",
            "match_radius_um": 6.0,
            **{m: {**pool_with_ci(per_image[m], args.seed), "confusion": confusion[m].tolist(), "per_image": per_image[m]} for m in per_image},
        }
        print(json.dumps({m: {k: v for k, v in result["cv"][m].items() if k not in ("per_image",)} for m in per_image}, indent=1), flush=True)
    if args.out:
        model = fit(make_model(args.kind, args.width), images, args.steps, args.seed)
        model.save(args.out, training_data="CRCHistoPhenotypes (48 shared images)", training_data_licence=CRC_LICENCE)
        result["out"] = args.out
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=float)


def pool_with_ci(per_image: list[dict], seed: int, n_boot: int = 2000) -> dict:
    """Pooled inflammatory precision/recall/F1 over held-out images + image bootstrap 95 % CI."""
    tp = np.array([r["tp"] for r in per_image])
    fp = np.array([r["fp"] for r in per_image])
    fn = np.array([r["fn"] for r in per_image])

    def f1(i: np.ndarray) -> float:
        return 2 * tp[i].sum() / max(1, 2 * tp[i].sum() + fp[i].sum() + fn[i].sum())

    rng = np.random.default_rng(seed)
    boots = [f1(rng.integers(0, len(tp), len(tp))) for _ in range(n_boot)]
    all_i = np.arange(len(tp))
    return {
        "f1": f1(all_i),
        "precision": tp.sum() / max(1, tp.sum() + fp.sum()),
        "recall": tp.sum() / max(1, tp.sum() + fn.sum()),
        "f1_ci95": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))],
        "n_images": len(tp),
    }


if __name__ == "__main__":
    main()
