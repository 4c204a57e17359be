"""Real-tile check of an encoder + MIL models: bags of CRC-VAL-HE-7K tiles, positive when they
hold a few tumour tiles (the figures of docs/mil.md).

For each MIL model prints
  1. ``cross_validate_bags`` AUC with its corrected 95 % CI on 80 bags (40 per tile pool),
  2. the same with shuffled labels (the CI should cover 0.5),
  3. tile-disjoint AUCs: trained on the bags of one tile pool, scored on the other's (both ways),
and the share of attention the tumour tiles get in positive bags (their share of tiles: ~9 %).

Usage::

    OMP_NUM_THREADS=1 python scripts/validate_mil_tile_bags.py [--data DIR] [--encoder FILE
        --encoder-arch NAME] [--models abmil,transmil,meanpool,maxpool] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/kather-crc-val-he-7k")
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--encoder-arch", default=None)
    parser.add_argument("--models", default="abmil,transmil,meanpool,maxpool")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    import torch
    from sklearn.metrics import roc_auc_score

    from immunodig.embeddings import load_encoder
    from immunodig.mil import cross_validate_bags, fit_mil, predict_bags
    from immunodig.mil.tile_bags import dihedral_views, make_tile_bags, tile_pools
    from immunodig.tissue.dataset import list_folder_dataset, read_tile

    torch.set_num_threads(1)
    encoder = load_encoder(args.encoder, args.encoder_arch)
    items = list_folder_dataset(args.data)
    pools = np.repeat(tile_pools(np.array([c for _, c in items]), seed=0), 8)
    x = np.concatenate([encoder.embed(dihedral_views(read_tile(p, encoder.tile_size_px))) for p, _ in items])
    classes = np.repeat([c for _, c in items], 8)
    print(f"encoder {encoder.name} ({encoder.file_sha256[:12]}), dim {encoder.dim}; {len(items)} real tiles x 8 "
          f"orientations; load average {os.getloadavg()[0]:.2f}")
    bags, labels, _ = make_tile_bags(x, classes, "TUM", 40, seed=1, pools=pools, pool=0)
    more, more_labels, _ = make_tile_bags(x, classes, "TUM", 40, seed=2, pools=pools, pool=1)
    bags, labels = bags + more, np.concatenate([labels, more_labels])
    shuffled = np.random.default_rng(9).permutation(labels)
    for model in args.models.split(","):
        t0 = time.perf_counter()
        cv = dict(model=model, seed=0, n_repeats=args.repeats, n_boot=1000, epochs=args.epochs)
        found = cross_validate_bags(bags, labels, **cv)
        null = cross_validate_bags(bags, shuffled, **cv)
        disjoint, mass = [], []
        for train_pool in (0, 1):
            train, y_train, _ = make_tile_bags(x, classes, "TUM", 40, seed=3, pools=pools, pool=train_pool)
            test, y_test, tumour = make_tile_bags(x, classes, "TUM", 40, seed=4, pools=pools, pool=1 - train_pool)
            scores, attention = predict_bags(fit_mil(train, y_train, model, seed=0), test)
            disjoint.append(roc_auc_score(y_test, scores))
            mass += [w[m].sum() for w, m in zip(attention, tumour) if m.any()]
        lo, hi = found["auc_ci"]
        nlo, nhi = null["auc_ci"]
        print(f"{model:9s}: CV AUC {found['auc']:.3f} (95% CI {lo:.3f}-{hi:.3f}); shuffled {null['auc']:.3f} "
              f"({nlo:.3f}-{nhi:.3f}); tile-disjoint AUC {disjoint[0]:.3f} / {disjoint[1]:.3f}; tumour tiles' "
              f"attention share {np.mean(mass):.2f}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
