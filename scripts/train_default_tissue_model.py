"""Train the shipped default tissue classifier (immunodig/assets/tissue/kather9_default.pt).

Reproducible and seeded. Steps:

1. Real labelled tiles: ``../shared/data/kather-crc-val-he-7k`` (95 tiles, 9 classes, CC BY 4.0).
2. Compare approaches by repeated stratified cross-validation on the real tiles only
   (default 5 x 5-fold; augmented copies and synthetic tiles enter training folds only, never
   test folds): hand-crafted features + logistic regression, + gradient boosting (XGBoost), and
   with ``--cnn-repeats N`` a small CNN from scratch with heavy augmentation and stain jitter.
   Balanced accuracy: mean over repeats of the pooled out-of-fold balanced accuracy, 95 % CI by
   stratified bootstrap of tiles (2,000 resamples) on the out-of-fold predictions.
3. Fit the chosen approach on all real tiles (+ augmented copies) together with synthetic tiles
   from ``immunodig.synthetic.render_class_tile`` (so it also reads the demo cohort), and write
   the model file with the CV result in its metadata.

Usage::

    OMP_NUM_THREADS=1 python scripts/train_default_tissue_model.py [--data DIR] [--out FILE]
        [--repeats 5] [--folds 5] [--n-augment 8] [--n-synthetic 40] [--cnn-repeats 0]
        [--report JSON]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from immunodig import __version__
from immunodig.tissue.checkpoint import save_checkpoint
from immunodig.tissue.classifier_eval import classification_metrics
from immunodig.tissue.dataset import list_folder_dataset, read_tile
from immunodig.tissue.feature_training import (
    FeatureTrainingParams,
    feature_matrix,
    feature_metadata,
    fit_feature_head,
    predict_with_state,
)
from immunodig.vocab import KATHER_CLASSES

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "kather-crc-val-he-7k"
OUT = REPO / "immunodig" / "assets" / "tissue" / "kather9_default.pt"
#: Total weight of the synthetic tiles relative to the real ones (real + augmented copies = 1).
SYNTHETIC_WEIGHT = 0.5
LICENCE = ("real tiles: CRC-VAL-HE-7K, CC BY 4.0 (Kather, Halama, Marx; Zenodo "
           "10.5281/zenodo.1214456; cite Kather et al., PLOS Med 2019); synthetic tiles: generated "
           "by immunodig; weights: BSD-3-Clause like immunodig")


def synthetic_features(n_per_class: int, seed: int) -> tuple[np.ndarray, list[str]]:
    from immunodig.synthetic import render_class_tile

    rng = np.random.default_rng(seed)
    tiles, labels = [], []
    for _ in range(n_per_class):
        for c in KATHER_CLASSES:
            tiles.append(render_class_tile(c, 224, 0.5, rng))
            labels.append(c)
    X, _ = feature_matrix(tiles, 0)
    return X, labels


def fit(X, XA, y, XS, ys, params: FeatureTrainingParams) -> dict:
    """Head on real (+ augmented) tiles and synthetic tiles with SYNTHETIC_WEIGHT in total."""
    k = XA.shape[1]
    Xt = np.vstack([X, XA.reshape(-1, X.shape[1])] + ([XS] if len(ys) else []))
    yt = list(y) + [c for c in y for _ in range(k)] + list(ys)
    n_real = len(y) * (k + 1)
    w = np.concatenate([np.ones(n_real), np.full(len(ys), SYNTHETIC_WEIGHT * n_real / max(len(ys), 1))])
    return fit_feature_head(Xt, yt, params, sample_weight=w)


def bootstrap_ci(y: np.ndarray, preds: list[np.ndarray], seed: int, n_boot: int = 2000) -> tuple[float, float]:
    """95 % CI of the repeat-averaged balanced accuracy, stratified bootstrap over tiles."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in np.unique(y)]
    stats = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(ix, ix.size) for ix in by_class])
        stats.append(np.mean([classification_metrics(y[idx], p[idx])["balanced_accuracy"] for p in preds]))
    lo, hi = np.percentile(stats, (2.5, 97.5))
    return float(lo), float(hi)


def summarise(name: str, y: np.ndarray, preds: list[np.ndarray], seed: int) -> dict:
    per_repeat = [classification_metrics(y, p) for p in preds]
    bacc = [m["balanced_accuracy"] for m in per_repeat]
    lo, hi = bootstrap_ci(y, preds, seed)
    res = {"approach": name, "balanced_accuracy": float(np.mean(bacc)), "ci95": [lo, hi],
           "balanced_accuracy_per_repeat": bacc,
           "accuracy": float(np.mean([m["accuracy"] for m in per_repeat])),
           "per_class_recall": {c: float(np.mean([m["per_class"][c]["recall"] for m in per_repeat]))
                                for c in KATHER_CLASSES}}
    print(f"{name:<40} balanced accuracy {res['balanced_accuracy']:.3f} (95 % CI {lo:.3f}-{hi:.3f}); "
          f"per repeat {np.round(bacc, 3).tolist()}", flush=True)
    return res


def cv_features(X, XA, y, XS, ys, head: str, folds: int, repeats: int, seed: int, C: float) -> list[np.ndarray]:
    from sklearn.model_selection import StratifiedKFold

    preds = []
    for r in range(repeats):
        pred = np.empty(len(y), dtype=object)
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed + r).split(X, y):
            state = fit(X[tr], XA[tr], y[tr], XS, ys, FeatureTrainingParams(head=head, C=C, seed=seed))
            pred[te] = predict_with_state(state, X[te])
        preds.append(pred)
    return preds


def cv_cnn(tiles: list[np.ndarray], y: np.ndarray, folds: int, repeats: int, seed: int,
           epochs: int) -> list[np.ndarray]:
    """smallcnn from scratch, heavy augmentation + HED jitter, early stopping on an inner split."""
    import torch
    from sklearn.model_selection import StratifiedKFold

    from immunodig.tissue.cnn_training import IMAGENET_MEAN, IMAGENET_STD, CNNTrainingParams, train_cnn

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    preds = []
    for r in range(repeats):
        pred = np.empty(len(y), dtype=object)
        for k, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed + r).split(tiles, y)):
            t = time.perf_counter()
            params = CNNTrainingParams(epochs=epochs, patience=epochs, width=16, batch_size=16, seed=seed + k)
            model, classes, _ = train_cnn([tiles[i] for i in tr], list(y[tr]), params=params, log=None)
            x = (torch.from_numpy(np.stack([tiles[i] for i in te])).permute(0, 3, 1, 2).float() - mean) / std
            with torch.inference_mode():
                pred[te] = [classes[i] for i in model(x).argmax(1).numpy()]
            print(f"  cnn repeat {r} fold {k}: {time.perf_counter() - t:.0f} s", flush=True)
        preds.append(pred)
    return preds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-augment", type=int, default=8)
    ap.add_argument("--n-synthetic", type=int, default=40, help="synthetic tiles per class")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--cnn-repeats", type=int, default=0, help="CV repeats of the CNN (slow on CPU)")
    ap.add_argument("--cnn-epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", type=Path, help="write the comparison as JSON")
    ap.add_argument("--feature-cache", type=Path, help="npz of computed features: reused if present, "
                    "written otherwise (must come from the same settings)")
    args = ap.parse_args()

    items = list_folder_dataset(args.data)
    files, y = [p for p, _ in items], np.asarray([c for _, c in items], dtype=object)
    tiles = [read_tile(p, 224) for p in files]
    print(f"{len(files)} real tiles from {args.data}", flush=True)
    t = time.perf_counter()
    if args.feature_cache and args.feature_cache.exists():
        cache = np.load(args.feature_cache, allow_pickle=False)
        X, XA, XS, ys = cache["X"], cache["XA"], cache["XS"], cache["ys"]
    else:
        X, XA = feature_matrix(tiles, args.n_augment, args.seed)
        XS, ys = synthetic_features(args.n_synthetic, args.seed + 1)
        if args.feature_cache:
            np.savez(args.feature_cache, X=X, XA=XA, XS=XS, ys=np.asarray(ys, dtype=str))
    ys = np.asarray(ys, dtype=object)
    print(f"features: {time.perf_counter() - t:.0f} s", flush=True)

    results = []
    cv = dict(folds=args.folds, repeats=args.repeats, seed=args.seed)
    pl = cv_features(X, XA, y, XS, ys, "logistic", C=args.C, **cv)
    results.append(summarise("features + logistic regression", y, pl, args.seed))
    px = cv_features(X, XA, y, XS, ys, "xgboost", C=args.C, **cv)
    results.append(summarise("features + gradient boosting (xgboost)", y, px, args.seed))
    if args.cnn_repeats:
        pc = cv_cnn(tiles, y, args.folds, args.cnn_repeats, args.seed, args.cnn_epochs)
        results.append(summarise(f"smallcnn from scratch ({args.cnn_epochs} epochs)", y, pc, args.seed))
    best = max(results[:2], key=lambda r: r["balanced_accuracy"])  # shipped: a feature head
    head = "logistic" if "logistic" in best["approach"] else "xgboost"

    params = FeatureTrainingParams(head=head, n_augment=args.n_augment, C=args.C, seed=args.seed)
    state = fit(X, XA, y, XS, ys, params)
    classes = state.pop("_classes")
    digest = hashlib.sha256("".join(sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)).encode())
    scheme = f"{args.repeats} x repeated stratified {args.folds}-fold CV on {len(y)} real CRC-VAL-HE-7K tiles"
    meta = feature_metadata(
        classes, params, input_mpp=0.5, tile_size_px=224, licence=LICENCE,
        provenance={"script": "scripts/train_default_tissue_model.py", "seed": args.seed,
                    "real_tiles": len(y), "real_data": "kather-crc-val-he-7k (shared developer split)",
                    "real_files_sha256": digest.hexdigest(), "n_augment": args.n_augment,
                    "synthetic_tiles": len(ys), "synthetic_weight": SYNTHETIC_WEIGHT,
                    "code_version": __version__,
                    "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        metrics={"cv_scheme": scheme, "cv_balanced_accuracy": best["balanced_accuracy"],
                 "cv_balanced_accuracy_ci95": best["ci95"], "cv_accuracy": best["accuracy"],
                 "cv_per_class_recall": best["per_class_recall"],
                 "compared": {r["approach"]: {"balanced_accuracy": r["balanced_accuracy"], "ci95": r["ci95"]}
                              for r in results}})
    save_checkpoint(args.out, meta, state)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB): {best['approach']}, CV balanced "
          f"accuracy {best['balanced_accuracy']:.3f} (95 % CI {best['ci95'][0]:.3f}-{best['ci95'][1]:.3f})")
    if args.report:
        args.report.write_text(json.dumps({"scheme": scheme, "results": results}, indent=2))


if __name__ == "__main__":
    main()
