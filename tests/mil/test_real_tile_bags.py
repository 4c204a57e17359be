"""Real CRC tiles (CRC-VAL-HE-7K sample) in bags: a bag is positive when it holds a few tumour
tiles. ABMIL on the shipped default encoder finds them; shuffled labels do not."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.mil import cross_validate_bags, fit_mil, predict_bags
from immunodig.mil.tile_bags import dihedral_views, make_tile_bags, tile_pools

pytest.importorskip("torch")
KATHER = "kather-crc-val-he-7k"


@pytest.fixture(scope="module")
def instances(shared_data):
    """Default-encoder embeddings of every real tile in its 8 dihedral orientations, the class
    and the tile pool (:func:`tile_pools`) of each."""
    from immunodig.embeddings import load_encoder
    from immunodig.tissue.dataset import list_folder_dataset, read_tile

    root = shared_data / KATHER
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    encoder = load_encoder()
    items = list_folder_dataset(root)
    pools = tile_pools(np.array([c for _, c in items]), seed=0)
    x = np.concatenate([encoder.embed(dihedral_views(read_tile(p, encoder.tile_size_px))) for p, _ in items])
    return x, np.repeat([c for _, c in items], 8), np.repeat(pools, 8)


@pytest.mark.usefixtures("torch_one_thread")
def test_abmil_on_the_default_encoder_finds_bags_with_a_few_tumour_tiles(instances):
    x, classes, pools = instances
    bags, labels, _ = make_tile_bags(x, classes, "TUM", 40, seed=1, pools=pools, pool=0)
    more, more_labels, _ = make_tile_bags(x, classes, "TUM", 40, seed=2, pools=pools, pool=1)
    bags, labels = bags + more, np.concatenate([labels, more_labels])
    found = cross_validate_bags(bags, labels, model="abmil", seed=0, n_repeats=2, n_boot=200, epochs=30)
    assert found["auc"] >= 0.90
    shuffled = cross_validate_bags(bags, np.random.default_rng(9).permutation(labels), model="abmil",
                                   seed=0, n_repeats=2, n_boot=200, epochs=30)
    low, high = shuffled["auc_ci"]
    assert low < 0.5 < high


@pytest.mark.usefixtures("torch_one_thread")
def test_abmil_generalises_to_tiles_it_never_saw(instances):
    """Trained on bags of one tile pool, scored on bags of the other (no tile shared). Each pool
    holds only 5-6 distinct tumour tiles, so this is a hard check of the baseline encoder
    (docs/mil.md gives the measured AUCs); the bar is well above chance."""
    from sklearn.metrics import roc_auc_score

    x, classes, pools = instances
    for train_pool in (0, 1):
        train, y_train, _ = make_tile_bags(x, classes, "TUM", 40, seed=3, pools=pools, pool=train_pool)
        test, y_test, tumour = make_tile_bags(x, classes, "TUM", 40, seed=4, pools=pools, pool=1 - train_pool)
        scores, attention = predict_bags(fit_mil(train, y_train, "abmil", seed=0), test)
        assert roc_auc_score(y_test, scores) >= 0.70
        # In positive bags the few tumour tiles draw more attention than their share of tiles.
        mass = [w[m].sum() for w, m in zip(attention, tumour) if m.any()]
        share = [m.mean() for m in tumour if m.any()]
        assert np.mean(mass) > 2 * np.mean(share)


def test_tile_bags_respect_pools_and_labels():
    x = np.arange(200, dtype=float)[:, None]
    classes = np.array(["TUM"] * 20 + ["STR"] * 180)
    pools = tile_pools(classes, seed=1)
    assert (pools[classes == "TUM"] == 1).sum() == 10
    bags, labels, masks = make_tile_bags(x, classes, "TUM", 10, seed=0, pools=pools, pool=1)
    for bag, label, mask in zip(bags, labels, masks):
        assert np.all(pools[bag[:, 0].astype(int)] == 1)
        assert mask.any() == bool(label) and len(bag) - mask.sum() == 20
