"""MIL networks: attention weights, padding invariance, the Cox loss against its definition."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.errors import ConfigError
from immunodig.vocab import MIL_MODELS

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("model", MIL_MODELS)
def test_weights_sum_to_one_and_padding_changes_nothing(model):
    from immunodig.mil.networks import build_network

    torch.manual_seed(0)
    net = build_network(model, in_dim=8, n_clinical=2, hidden=16, dropout=0.0).eval()
    bag = torch.randn(1, 5, 8)
    clinical = torch.randn(1, 2)
    padded = torch.cat([bag, torch.randn(1, 3, 8) * 100], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    with torch.no_grad():
        alone, w_alone = net(bag, torch.ones(1, 5, dtype=torch.bool), clinical)
        score, w = net(padded, mask, clinical)
    assert torch.allclose(score, alone, atol=1e-5)
    assert torch.allclose(w[0, :5], w_alone[0], atol=1e-5)
    assert float(w[0, 5:].abs().sum()) == 0.0
    assert float(w[0].sum()) == pytest.approx(1.0, abs=1e-5)


def test_clinical_covariates_reach_the_score():
    from immunodig.mil.networks import build_network

    torch.manual_seed(0)
    net = build_network("abmil", in_dim=4, n_clinical=1, hidden=8, dropout=0.0).eval()
    bag, mask = torch.randn(1, 6, 4), torch.ones(1, 6, dtype=torch.bool)
    a, _ = net(bag, mask, torch.tensor([[0.0]]))
    b, _ = net(bag, mask, torch.tensor([[3.0]]))
    assert float(a) != float(b)


def test_unknown_model_is_refused():
    from immunodig.mil.networks import build_network

    with pytest.raises(ConfigError, match="unknown MIL model 'clam'"):
        build_network("clam", in_dim=4)


def test_cox_loss_matches_breslow_partial_likelihood_with_ties():
    from immunodig.mil.losses import cox_partial_likelihood_loss

    rng = np.random.default_rng(1)
    r = rng.normal(size=15)
    t = rng.integers(1, 5, size=15).astype(float)  # many ties
    e = rng.random(15) < 0.6
    by_hand = -np.mean([r[i] - np.log(np.exp(r[t >= t[i]]).sum()) for i in range(15) if e[i]])
    got = cox_partial_likelihood_loss(torch.tensor(r), torch.tensor(t), torch.tensor(e))
    assert float(got) == pytest.approx(by_hand, rel=1e-10)


def test_cox_loss_without_events_is_zero_and_differentiable():
    from immunodig.mil.losses import cox_partial_likelihood_loss

    r = torch.randn(4, requires_grad=True)
    loss = cox_partial_likelihood_loss(r, torch.arange(4.0), torch.zeros(4, dtype=torch.bool))
    loss.backward()
    assert float(loss) == 0.0 and r.grad is not None
