"""Train the shipped default tile encoder (immunodig/assets/embeddings/kather9_smallcnn_encoder.pt).

A small CNN (``smallcnn``, width 16, about 0.1 M parameters) trained supervised on the Kather-9
classes; the embedding is its penultimate layer (global average pool, 64 values). Seeded. Steps:

1. Real labelled tiles: ``../shared/data/kather-crc-val-he-7k`` (95 tiles, 9 classes, CC BY 4.0),
   plus synthetic tiles from ``immunodig.synthetic.render_class_tile`` (so it also reads the
   demo cohort), trained with :func:`immunodig.tissue.cnn_training.train_cnn` (heavy augmentation,
   HED stain jitter; the epoch kept is the one that classifies the unaugmented real training
   tiles best).
2. Embedding check, TUM vs rest on the real tiles: logistic regression on the embeddings,
   repeated stratified 5-fold CV. Two figures:

   - ``in_sample``: embeddings of the shipped encoder, which saw these tiles in training (a check
     of fit, optimistic);
   - ``out_of_sample`` (``--outer-folds K``, K > 0): for each of K folds the encoder is retrained
     without the fold's real tiles, the logistic regression fitted on the other folds' embeddings
     and scored on the fold (an honest estimate for unseen tiles).

3. The model file, with both figures in its metadata (``metrics``).

Usage::

    OMP_NUM_THREADS=1 python scripts/train_default_encoder.py [--data DIR] [--out FILE]
        [--epochs 30] [--n-synthetic 10] [--outer-folds 0] [--seed 0] [--report JSON]
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
from immunodig.tissue.cnn_training import CNNTrainingParams, cnn_metadata, train_cnn
from immunodig.tissue.dataset import list_folder_dataset, read_tile
from immunodig.vocab import KATHER_CLASSES

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "kather-crc-val-he-7k"
OUT = REPO / "immunodig" / "assets" / "embeddings" / "kather9_smallcnn_encoder.pt"
LICENCE = ("real tiles: CRC-VAL-HE-7K, CC BY 4.0 (Kather, Halama, Marx; Zenodo "
           "10.5281/zenodo.1214456; cite Kather et al., PLOS Med 2019); synthetic tiles: generated "
           "by immunodig; weights: BSD-3-Clause like immunodig")


def synthetic_tiles(n_per_class: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """``n_per_class`` generated tiles of every Kather class (224 px at 0.5 µm/px)."""
    from immunodig.synthetic import render_class_tile

    rng = np.random.default_rng(seed)
    tiles, labels = [], []
    for _ in range(n_per_class):
        for c in KATHER_CLASSES:
            tiles.append(render_class_tile(c, 224, 0.5, rng))
            labels.append(c)
    return tiles, labels


def train_encoder(tiles: list[np.ndarray], labels: list[str], real: list[np.ndarray], real_labels: list[str],
                  params: CNNTrainingParams):
    """A trained ``smallcnn`` (eval mode, CPU) and its class order.

    Every tile is trained on; the epoch kept is the one classifying the (unaugmented) ``real``
    training tiles best, so no real tile is spent on an internal hold-out.
    """
    model, classes, info = train_cnn(tiles, labels, real, real_labels, params=params, log=None)
    print(f"  trained: best epoch {info['best_epoch']}, balanced accuracy on the real training tiles "
          f"{info['best_val_balanced_accuracy']:.3f}", flush=True)
    return model, classes


def embed(model, tiles: list[np.ndarray]) -> np.ndarray:
    """Penultimate-layer embeddings (the network without its Dropout and Linear head)."""
    import torch

    from immunodig.tissue.cnn_training import IMAGENET_MEAN, IMAGENET_STD

    trunk = model[:-2]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    x = (torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2).float() - mean) / std
    with torch.inference_mode():
        return trunk(x).numpy().astype(np.float64)


def tumour_scores(E_train: np.ndarray, y_train: np.ndarray, E_test: np.ndarray) -> np.ndarray:
    """P(TUM) of standardised logistic regression (L2, C = 1) fitted on the training embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    return clf.fit(E_train, y_train).predict_proba(E_test)[:, 1]


def tumour_metrics(y: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    pred = score >= 0.5
    return {"accuracy": float(np.mean(pred == y)), "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "auc": float(roc_auc_score(y, score))}


def in_sample_check(E: np.ndarray, y: np.ndarray, repeats: int, seed: int) -> dict:
    """Repeated 5-fold CV of the logistic regression on fixed embeddings."""
    from sklearn.model_selection import StratifiedKFold

    runs = []
    for r in range(repeats):
        score = np.empty(len(y))
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed + r).split(E, y):
            score[te] = tumour_scores(E[tr], y[tr], E[te])
        runs.append(tumour_metrics(y, score))
    return {k: float(np.mean([m[k] for m in runs])) for k in runs[0]} | {"repeats": repeats, "folds": 5}


def out_of_sample_check(tiles, labels, syn, syn_labels, folds: int, params: CNNTrainingParams,
                        seed: int) -> dict:
    """Encoder retrained without each fold's real tiles; logistic regression scored on the fold."""
    from sklearn.model_selection import StratifiedKFold

    y_cls = np.asarray(labels)
    y = y_cls == "TUM"
    score = np.empty(len(y))
    for k, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(tiles, y_cls)):
        t = time.perf_counter()
        real = [tiles[i] for i in tr]
        model, _ = train_encoder(real + syn, list(y_cls[tr]) + syn_labels, real, list(y_cls[tr]), params)
        E_tr, E_te = embed(model, [tiles[i] for i in tr]), embed(model, [tiles[i] for i in te])
        score[te] = tumour_scores(E_tr, y[tr], E_te)
        print(f"  outer fold {k}: {time.perf_counter() - t:.0f} s", flush=True)
    return tumour_metrics(y, score) | {"folds": folds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--n-synthetic", type=int, default=10, help="synthetic tiles per class")
    ap.add_argument("--outer-folds", type=int, default=0, help="out-of-sample check (retrains K times)")
    ap.add_argument("--repeats", type=int, default=5, help="CV repeats of the in-sample check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", type=Path, help="write the checks as JSON")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    items = list_folder_dataset(args.data)
    files, labels = [p for p, _ in items], [c for _, c in items]
    tiles = [read_tile(p, 224) for p in files]
    syn, syn_labels = synthetic_tiles(args.n_synthetic, args.seed + 1)
    print(f"{len(tiles)} real tiles from {args.data}, {len(syn)} synthetic tiles", flush=True)
    params = CNNTrainingParams(epochs=args.epochs, patience=args.epochs, width=args.width, batch_size=16,
                               seed=args.seed, device="cpu")
    model, classes = train_encoder(tiles + syn, labels + syn_labels, tiles, labels, params)
    y = np.asarray(labels) == "TUM"
    metrics: dict = {"tumour_vs_rest_in_sample": in_sample_check(embed(model, tiles), y, args.repeats, args.seed)}
    print(f"TUM vs rest, in sample: {metrics['tumour_vs_rest_in_sample']}", flush=True)
    if args.outer_folds:
        metrics["tumour_vs_rest_out_of_sample"] = out_of_sample_check(
            tiles, labels, syn, syn_labels, args.outer_folds, params, args.seed)
        print(f"TUM vs rest, out of sample: {metrics['tumour_vs_rest_out_of_sample']}", flush=True)
    metrics["check"] = ("logistic regression (standardised, L2, C=1) on the embeddings of the real tiles, "
                        "TUM vs the 8 other classes, stratified 5-fold CV; in_sample: the shipped encoder "
                        "saw these tiles; out_of_sample: encoder retrained without each outer fold")

    digest = hashlib.sha256("".join(sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)).encode())
    meta = cnn_metadata(
        classes, params, input_mpp=0.5, tile_size_px=224, licence=LICENCE,
        provenance={"script": "scripts/train_default_encoder.py", "seed": args.seed, "epochs": args.epochs,
                    "real_tiles": len(tiles), "real_data": "kather-crc-val-he-7k (shared developer split)",
                    "real_files_sha256": digest.hexdigest(), "synthetic_tiles": len(syn),
                    "code_version": __version__,
                    "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        metrics=metrics)
    meta.extra |= {"embedding": "penultimate", "name": "immunodig-kather9-smallcnn"}
    save_checkpoint(args.out, meta, model.state_dict())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.0f} s")
    if args.report:
        args.report.write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
