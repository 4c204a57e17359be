"""Generated bags of embeddings with a planted tile-level signal."""

from __future__ import annotations

import numpy as np
import pytest


def planted_bags(n: int = 60, dim: int = 12, seed: int = 0, signal: bool = True):
    """Bags of Gaussian tiles; every second bag (label 1) holds 3-7 tiles shifted along one
    fixed direction (the signal), the rest are noise. With ``signal=False`` no bag is shifted."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=dim)
    direction *= 3.0 / np.linalg.norm(direction)
    bags, labels, n_signal = [], [], []
    for i in range(n):
        bag = rng.normal(size=(int(rng.integers(40, 120)), dim))
        label = i % 2
        k = int(rng.integers(3, 8)) if label and signal else 0
        bag[:k] += direction
        bags.append(bag.astype(np.float32))
        labels.append(label)
        n_signal.append(k)
    return bags, np.array(labels), np.array(n_signal)


@pytest.fixture(scope="session")
def torch_one_thread():
    """Networks train on one thread (the suite shares two cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
