"""Training losses of the MIL networks: binary cross-entropy and the Cox partial likelihood."""

from __future__ import annotations

import torch


def cox_partial_likelihood_loss(risk: torch.Tensor, time: torch.Tensor,
                                event: torch.Tensor) -> torch.Tensor:
    """Negative Cox log partial likelihood (Breslow ties), averaged over events.

    ``-(1/d) sum_{i: event} [r_i - log sum_{j: t_j >= t_i} exp(r_j)]``. A batch without an
    event carries no information: the loss is 0 (still attached to the graph).

    Parameters
    ----------
    risk : tensor (n,)
        Log relative hazard of each bag.
    time, event : tensors (n,)
        Follow-up time and event indicator.
    """
    event = event.to(torch.bool)
    if not bool(event.any()):
        return risk.sum() * 0.0
    order = torch.argsort(time, descending=True, stable=True)
    r, t, e = risk[order], time[order], event[order]
    log_cumulative = torch.logcumsumexp(r, dim=0)
    # The risk set of t_i is every j with t_j >= t_i: in descending order, up to the last tie.
    last_tie = torch.searchsorted(-t.contiguous(), -t.contiguous(), right=True) - 1
    return -(r[e] - log_cumulative[last_tie][e]).mean()


def binary_loss(logit: torch.Tensor, label: torch.Tensor,
                pos_weight: float | None = None) -> torch.Tensor:
    """Binary cross-entropy on logits; ``pos_weight`` up-weights the positive class."""
    weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=logit.dtype)
    return torch.nn.functional.binary_cross_entropy_with_logits(
        logit, label.to(logit.dtype), pos_weight=weight)
