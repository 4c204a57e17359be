"""Bags made of labelled tiles, to check an encoder + MIL model on a tile dataset.

A bag holds ``bag_size`` instances that are not of the ``target`` class; a positive bag also
holds 1-``max_target`` instances of it. With ``pools`` (a tile-level split), each bag draws from
one pool only, so bags of different pools share no tile: train on one pool, test on the other
for a check on tiles the model never saw.
"""

from __future__ import annotations

import numpy as np


def dihedral_views(tile: np.ndarray) -> np.ndarray:
    """The 8 rotations/reflections of an ``(H, W, 3)`` tile, ``(8, H, W, 3)``."""
    return np.ascontiguousarray(np.stack([np.rot90(t, k) for t in (tile, tile[:, ::-1]) for k in range(4)]))


def tile_pools(classes: np.ndarray, seed: int = 0) -> np.ndarray:
    """Split tiles into two pools (0/1), half of each class in each (stratified, seeded)."""
    classes = np.asarray(classes)
    rng = np.random.default_rng(seed)
    pool = np.zeros(len(classes), dtype=int)
    for cls in sorted(set(classes.tolist())):
        idx = rng.permutation(np.flatnonzero(classes == cls))
        pool[idx[len(idx) // 2:]] = 1
    return pool


def make_tile_bags(x: np.ndarray, classes: np.ndarray, target: str, n_bags: int, *, seed: int = 0,
                   bag_size: int = 20, max_target: int = 3, pools: np.ndarray | None = None,
                   pool: int = 0) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """Bags of instance embeddings; every second bag (label 1) holds a few ``target`` instances.

    Parameters
    ----------
    x : array (n, dim)
        Instance embeddings.
    classes : array (n,)
        Class of each instance.
    target : str
        The class that makes a bag positive.
    n_bags : int
        Bags to draw (half positive).
    seed : int
        Seed of the draw.
    bag_size, max_target : int
        Non-target instances per bag; a positive bag adds 1 to ``max_target`` target instances.
    pools, pool : array, int
        Draw only from the instances with ``pools == pool``.

    Returns
    -------
    (bags, labels, target_masks)
        The bags, their 0/1 labels, and per bag which rows are ``target`` instances.
    """
    classes = np.asarray(classes)
    keep = np.ones(len(classes), dtype=bool) if pools is None else np.asarray(pools) == pool
    other = np.flatnonzero((classes != target) & keep)
    hits = np.flatnonzero((classes == target) & keep)
    rng = np.random.default_rng(seed)
    bags, labels, masks = [], [], []
    for i in range(n_bags):
        idx = rng.choice(other, bag_size, replace=False)
        if i % 2:
            k = int(rng.integers(1, max_target + 1))
            idx = np.concatenate([idx, rng.choice(hits, k, replace=False)])
        idx = rng.permutation(idx)
        bags.append(np.asarray(x[idx], dtype=np.float32))
        labels.append(i % 2)
        masks.append(classes[idx] == target)
    return bags, np.array(labels), masks
