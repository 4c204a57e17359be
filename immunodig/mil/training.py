"""Fit a MIL network on bags of tile embeddings and predict new bags.

Training is deterministic for a seed on a given machine and thread count: torch is seeded, the
bag order and the tiles sampled from each bag (at most ``max_tiles`` per bag and step, the usual
bag-size augmentation) come from a seeded numpy generator. Embeddings are standardised per
dimension with the training tiles' mean and SD; clinical covariates with the training bags' mean
and SD (missing values set to the training mean). Prediction uses every tile of a bag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from immunodig.errors import ConfigError


@dataclass(frozen=True)
class MILParams:
    """Hyper-parameters of one MIL fit (fixed a priori unless a grid is searched).

    Attributes
    ----------
    epochs : int
        Passes over the training bags.
    lr, weight_decay : float
        AdamW learning rate and weight decay.
    batch_size : int
        Bags per optimisation step (the Cox loss uses the risk sets inside the batch).
    max_tiles : int
        Tiles sampled per bag and step during training.
    hidden : int
        Width of the tile projection / transformer.
    dropout : float
        Dropout of the network.
    """

    epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 16
    max_tiles: int = 512
    hidden: int = 64
    dropout: float = 0.25

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> "MILParams":
        """Parameters from a dict; unknown names are refused with the valid ones listed."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ConfigError(f"unknown MIL parameter(s) {unknown}; valid: {sorted(names)}")
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


@dataclass
class FittedMIL:
    """A trained MIL network with the standardisation it was trained with."""

    model: str
    task: str
    network: Any
    mean: np.ndarray
    sd: np.ndarray
    clinical_mean: np.ndarray | None
    clinical_sd: np.ndarray | None
    params: MILParams


def _clinical_scaler(clinical: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    if clinical is None:
        return None, None
    mean = np.nanmean(clinical, axis=0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    sd = np.nanstd(clinical, axis=0)
    return mean, np.where((sd > 0) & np.isfinite(sd), sd, 1.0)


def _scaled_clinical(fitted: FittedMIL, clinical: np.ndarray | None) -> np.ndarray | None:
    if clinical is None or fitted.clinical_mean is None:
        return None
    filled = np.where(np.isnan(clinical), fitted.clinical_mean, clinical)
    return ((filled - fitted.clinical_mean) / fitted.clinical_sd).astype(np.float32)


def _padded(bags: list[np.ndarray], index: np.ndarray, mean, sd, max_tiles: int | None,
            rng: np.random.Generator | None):
    """Padded float32 batch ``(B, N, D)`` and mask of the bags ``index`` (tiles subsampled
    to ``max_tiles`` when ``rng`` is given)."""
    chosen = []
    for i in index:
        bag = bags[i]
        if rng is not None and max_tiles is not None and len(bag) > max_tiles:
            bag = bag[np.sort(rng.choice(len(bag), max_tiles, replace=False))]
        chosen.append(bag)
    n = max(len(b) for b in chosen)
    x = np.zeros((len(chosen), n, mean.size), dtype=np.float32)
    mask = np.zeros((len(chosen), n), dtype=bool)
    for k, bag in enumerate(chosen):
        x[k, :len(bag)] = (bag - mean) / sd
        mask[k, :len(bag)] = True
    return x, mask


def fit_mil(bags: list[np.ndarray], target: np.ndarray, model: str = "abmil", *,
            params: MILParams | None = None, seed: int = 0,
            clinical: np.ndarray | None = None) -> FittedMIL:
    """Train one MIL network.

    Parameters
    ----------
    bags : list of arrays (n_i, dim)
        Tile embeddings of each training bag (a patient: all its H&E slides' tiles).
    target : array
        Binary labels (0/1) or a structured survival array with fields ``time``, ``event``.
    model : str
        ``abmil``, ``transmil``, ``meanpool`` or ``maxpool``.
    params : MILParams, optional
        Hyper-parameters (defaults: :class:`MILParams`).
    seed : int
        Seed of the initialisation, bag order and tile sampling.
    clinical : array (n_bags, p), optional
        Clinical covariates fused late (NaN allowed).

    Returns
    -------
    FittedMIL
    """
    import torch

    from immunodig.mil.losses import binary_loss, cox_partial_likelihood_loss
    from immunodig.mil.networks import build_network

    params = params or MILParams()
    task = "survival" if target.dtype.names else "classification"
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tiles = np.concatenate(bags).astype(np.float64)
    mean, sd = tiles.mean(axis=0), tiles.std(axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    c_mean, c_sd = _clinical_scaler(clinical)
    net_params = {"hidden": params.hidden, "dropout": params.dropout}
    net = build_network(model, mean.size, 0 if clinical is None else clinical.shape[1], **net_params)
    fitted = FittedMIL(model, task, net, mean.astype(np.float32), sd.astype(np.float32),
                       c_mean, c_sd, params)
    clin = _scaled_clinical(fitted, clinical)
    if task == "classification":
        y = torch.as_tensor(target.astype(np.float32))
        n_pos = float(target.sum())
        pos_weight = (len(target) - n_pos) / n_pos if n_pos > 0 else None
    else:
        t = torch.as_tensor(target["time"].astype(np.float64))
        e = torch.as_tensor(target["event"].astype(bool))
    optimiser = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    net.train()
    for _ in range(params.epochs):
        order = rng.permutation(len(bags))
        for start in range(0, len(order), params.batch_size):
            idx = order[start:start + params.batch_size]
            x, mask = _padded(bags, idx, fitted.mean, fitted.sd, params.max_tiles, rng)
            c = None if clin is None else torch.as_tensor(clin[idx])
            score, _ = net(torch.as_tensor(x), torch.as_tensor(mask), c)
            if task == "classification":
                loss = binary_loss(score, y[idx], pos_weight)
            else:
                loss = cox_partial_likelihood_loss(score, t[idx], e[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval()
    return fitted


def predict_bags(fitted: FittedMIL, bags: list[np.ndarray],
                 clinical: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Score bags with every tile.

    Returns
    -------
    (scores, attention)
        Probability of the positive class (classification) or log relative hazard (survival)
        per bag, and each bag's tile weights (summing to 1).
    """
    import torch

    clin = _scaled_clinical(fitted, clinical)
    scores, weights = np.empty(len(bags)), []
    with torch.inference_mode():
        for i in range(len(bags)):
            x, mask = _padded(bags, np.array([i]), fitted.mean, fitted.sd, None, None)
            c = None if clin is None else torch.as_tensor(clin[i:i + 1])
            score, w = fitted.network(torch.as_tensor(x), torch.as_tensor(mask), c)
            scores[i] = float(score[0])
            weights.append(w[0].numpy().astype(np.float32))
    if fitted.task == "classification":
        scores = 1.0 / (1.0 + np.exp(-scores))
    return scores, weights
