"""Train the shipped cell classifier on CRCHistoPhenotypes + generated slides, with image-grouped CV.

Seeded (``--seed``, default 0; CPU results can still differ in the last digits across machines).
The shipped kind is an ensemble of ``--cnn-models`` (2) patch CNNs trained ``--cnn-epochs`` (32)
epochs each; ``--gbm-weight W`` averages in the gradient-boosting model on nucleus measures with
weight W, and ``--cnn-epochs 0`` trains the boosting model alone.

Usage (the shipped default)::

    python scripts/train_default_cell_classifier.py ../shared/data/crchistophenotypes \
        --cv 5 --json docs/nuclei_results/cell_classifier_cv.json \
        --out immunodig/assets/nuclei/nucleus_cells_crc.pt

Training data: the nuclei of the 48 CRCHistoPhenotypes images, segmented by the classical backend
and labelled by matching to the annotated centres, plus the nuclei of ``--synthetic-seeds``
generated slides (``immunodig.synthetic.make_slide``, 0.6 mm, 0.5 µm/px; labels from the drawn
truth), so that the shipped model also reads the demo slides. ``--cv K`` trains K models on K-1
folds of the real images (folds drawn at random by image, seed ``--seed``; generated slides are in
every training fold and never scored) and scores inflammatory detection on the held-out images
with ``evaluate_lymphocytes`` (classical segmentation + classification, match radius 6 µm); the
pooled F1 gets an image-bootstrap 95 % CI. ``--out`` then trains on all images and writes the model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from immunodig.nuclei.cell_classifier import CRC_LICENCE
from immunodig.nuclei.classical import ClassicalSegmenter
from immunodig.nuclei.datasets import PointImage, read_crchistophenotypes
from immunodig.nuclei.lymphocyte_eval import evaluate_lymphocytes
from immunodig.nuclei.patch_ensemble import PatchEnsembleClassifier, labelled_nuclei

#: Generated-slide cell classes in CRCHistoPhenotypes label order.
_CRC_ORDER = ("epithelial", "lymphocyte", "fibroblast", "other")


def synthetic_images(seeds: list[int], slide_mm: float = 0.6) -> list[PointImage]:
    """Generated slides (level 0, 0.5 µm/px) as point-annotated images."""
    import polars as pl
    import tifffile

    from immunodig.synthetic import make_slide

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            path, truth = Path(tmp) / f"s{seed}.tiff", Path(tmp) / f"t{seed}"
            make_slide(path, seed=seed, slide_mm=slide_mm, mpp=0.5, truth_dir=truth)
            rgb = np.ascontiguousarray(tifffile.imread(path)[..., :3])
            nuc = pl.read_parquet(truth / "nuclei.parquet")
            labels = np.array([_CRC_ORDER.index(c) for c in nuc["cell_class"]])
            out.append(PointImage(f"synthetic_seed{seed}", rgb, nuc.select("x_px", "y_px").to_numpy(), labels, 0.5))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--cv", type=int, default=0)
    ap.add_argument("--synthetic-seeds", type=int, nargs="*", default=[11, 12, 13, 14])
    ap.add_argument("--cnn-epochs", type=float, default=32.0)
    ap.add_argument("--cnn-models", type=int, default=2)
    ap.add_argument("--gbm-weight", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    images = read_crchistophenotypes(args.folder)
    synth = synthetic_images(args.synthetic_seeds)
    seg = ClassicalSegmenter()
    parts = {im.image_id: labelled_nuclei(im, seg) for im in [*images, *synth]}
    params = {"cnn_epochs": args.cnn_epochs, "cnn_models": args.cnn_models, "gbm_weight": args.gbm_weight}
    result: dict = {
        "kind": "nucleus-classifier",
        "params": params,
        "n_images": len(images),
        "synthetic_seeds": args.synthetic_seeds,
        "seed": args.seed,
    }

    def train(ids: list[str], seed: int) -> PatchEnsembleClassifier:
        x, p, y = (np.concatenate([parts[i][j] for i in ids]) for j in range(3))
        return PatchEnsembleClassifier(**params).fit_arrays(x, p, y, seed, {"n_images": len(ids), "image_ids": ids})

    synth_ids = [im.image_id for im in synth]
    if args.cv:
        folds = np.random.default_rng(args.seed).permutation(len(images)) % args.cv
        per_image, confusion = [], 0
        for k in range(args.cv):
            test = [im for im, f in zip(images, folds) if f == k]
            model = train([im.image_id for im, f in zip(images, folds) if f != k] + synth_ids, args.seed + k)
            rep = evaluate_lymphocytes(test, detector=model, segmenter=seg)
            for row in rep["per_image"]:
                row["fold"] = k
            per_image += rep["per_image"]
            confusion = confusion + np.array(rep["confusion"]["counts"])
            print(f"fold {k}: f1 {rep['f1']:.3f} p {rep['precision']:.3f} r {rep['recall']:.3f}", flush=True)
        result["cv"] = {
            "k": args.cv,
            "scheme": "image-grouped K-fold (random image folds); generated slides in every training fold",
            "match_radius_um": 6.0,
            "pipeline": {**pool_with_ci(per_image, args.seed), "confusion": confusion.tolist(), "per_image": per_image},
        }
        print(json.dumps({k: v for k, v in result["cv"]["pipeline"].items() if k != "per_image"}, indent=1), flush=True)
    if args.out:
        model = train([im.image_id for im in images] + synth_ids, args.seed)
        model.save(
            args.out,
            training_data=f"CRCHistoPhenotypes (48 shared images) + {len(synth)} generated slides "
            "(immunodig.synthetic)",
            training_data_licence=CRC_LICENCE,
        )
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
