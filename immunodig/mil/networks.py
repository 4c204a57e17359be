"""Multiple-instance networks over bags of tile embeddings.

Every network maps a padded batch of bags ``x (B, N, D)`` with a mask ``(B, N)`` (True = a
real tile) and optional clinical covariates ``(B, P)`` (late fusion: concatenated to the pooled
bag vector before the output layer) to one score per bag -- a logit (resistance) or a log
relative hazard (PFS) -- and a weight per tile that sums to 1 over each bag's real tiles (the
attention map).

- :class:`GatedAttentionMIL` (``abmil``): gated attention pooling, Ilse, Tomczak & Welling,
  ICML 2018.
- :class:`TransformerMIL` (``transmil``): TransMIL-style (Shao et al., NeurIPS 2021): a class
  token and pre-norm multi-head self-attention layers over the tiles; exact attention (tiles are
  subsampled in training), no PPEG position encoding (tile order in a bag carries no position).
  Tile weights: the class token's attention in the last layer, averaged over heads.
- :class:`PoolingMIL` (``meanpool`` / ``maxpool``): the same tile projection pooled by mean or
  max; the weight of a tile is ``1/n`` (mean) or the share of hidden units whose maximum it
  holds (max).
"""

from __future__ import annotations

import torch
from torch import nn

from immunodig.errors import ConfigError
from immunodig.vocab import MIL_MODELS


class _Head(nn.Module):
    """Pooled bag vector (+ clinical covariates) -> one score."""

    def __init__(self, dim: int, n_clinical: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim + n_clinical, 1)

    def forward(self, pooled: torch.Tensor, clinical: torch.Tensor | None) -> torch.Tensor:
        pooled = self.drop(pooled)
        if clinical is not None:
            pooled = torch.cat([pooled, clinical], dim=1)
        return self.out(pooled).squeeze(1)


def _projection(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout))


class GatedAttentionMIL(nn.Module):
    """Gated attention MIL (ABMIL).

    Parameters
    ----------
    in_dim : int
        Embedding dimension.
    hidden, attention_dim : int
        Width of the tile projection and of the attention network.
    dropout : float
        Dropout after the projection and before the output layer.
    n_clinical : int
        Clinical covariates fused late (0 = none).
    """

    def __init__(self, in_dim: int, hidden: int = 128, attention_dim: int = 64,
                 dropout: float = 0.25, n_clinical: int = 0) -> None:
        super().__init__()
        self.project = _projection(in_dim, hidden, dropout)
        self.attention_v = nn.Linear(hidden, attention_dim)
        self.attention_u = nn.Linear(hidden, attention_dim)
        self.attention_w = nn.Linear(attention_dim, 1)
        self.head = _Head(hidden, n_clinical, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                clinical: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.project(x)
        gate = torch.tanh(self.attention_v(h)) * torch.sigmoid(self.attention_u(h))
        logits = self.attention_w(gate).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=1)
        pooled = torch.einsum("bn,bnh->bh", weights, h)
        return self.head(pooled, clinical), weights


class _SelfAttentionBlock(nn.Module):
    """Pre-norm transformer block (fused scaled-dot-product attention); it also returns its
    queries and keys, from which :meth:`class_token_weights` gets the class token's attention
    without materialising the full ``N x N`` weight matrix."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"transformer width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # No mask when no bag is padded: the fused attention kernel then applies. No dropout on
        # the N x N attention matrix (its random mask alone costs more than the attention).
        mask = None if bool(keep.all()) else keep[:, None, None, :]
        y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        h = h + self.drop(self.out(y.transpose(1, 2).reshape(b, n, d)))
        return h + self.drop(self.mlp(self.norm2(h))), q, k

    @staticmethod
    def class_token_weights(q: torch.Tensor, k: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Attention of the class token (position 0) over every position, mean over heads."""
        logits = (q[:, :, :1] @ k.transpose(-1, -2)).squeeze(2) / q.shape[-1] ** 0.5
        return torch.softmax(logits.masked_fill(~keep[:, None, :], float("-inf")), dim=-1).mean(dim=1)


class TransformerMIL(nn.Module):
    """TransMIL-style transformer MIL (class token + self-attention layers).

    Parameters
    ----------
    in_dim : int
        Embedding dimension.
    hidden : int
        Model width (divisible by ``heads``).
    heads, layers : int
        Attention heads and transformer layers.
    dropout : float
        Dropout in the blocks and before the output layer.
    n_clinical : int
        Clinical covariates fused late (0 = none).
    """

    def __init__(self, in_dim: int, hidden: int = 128, heads: int = 4, layers: int = 2,
                 dropout: float = 0.1, n_clinical: int = 0) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden))
        nn.init.normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(_SelfAttentionBlock(hidden, heads, dropout)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.head = _Head(hidden, n_clinical, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                clinical: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.project(x)
        cls = self.cls_token.expand(h.shape[0], -1, -1)
        h = torch.cat([cls, h], dim=1)
        keep = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        q = k = None
        for block in self.blocks:
            h, q, k = block(h, keep)
        tile_weights = _SelfAttentionBlock.class_token_weights(q, k, keep)[:, 1:].masked_fill(~mask, 0.0)
        tile_weights = tile_weights / tile_weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return self.head(self.norm(h[:, 0]), clinical), tile_weights


class PoolingMIL(nn.Module):
    """Mean or max pooling of projected tiles (the baselines).

    Parameters
    ----------
    in_dim : int
        Embedding dimension.
    mode : {"mean", "max"}
        Pooling.
    hidden : int
        Width of the tile projection.
    dropout : float
        Dropout after the projection and before the output layer.
    n_clinical : int
        Clinical covariates fused late (0 = none).
    """

    def __init__(self, in_dim: int, mode: str = "mean", hidden: int = 128, dropout: float = 0.25,
                 n_clinical: int = 0) -> None:
        super().__init__()
        if mode not in ("mean", "max"):
            raise ConfigError(f"pooling mode {mode!r}: expected 'mean' or 'max'")
        self.mode = mode
        self.project = _projection(in_dim, hidden, dropout)
        self.head = _Head(hidden, n_clinical, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                clinical: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.project(x)
        m = mask.to(h.dtype)
        if self.mode == "mean":
            weights = m / m.sum(dim=1, keepdim=True).clamp_min(1.0)
            pooled = torch.einsum("bn,bnh->bh", weights, h)
        else:
            pooled, argmax = h.masked_fill(~mask[..., None], float("-inf")).max(dim=1)
            weights = torch.zeros_like(m).scatter_add_(1, argmax, torch.ones_like(argmax, dtype=h.dtype))
            weights = weights / h.shape[2]
        return self.head(pooled, clinical), weights


def build_network(model: str, in_dim: int, n_clinical: int = 0, **params) -> nn.Module:
    """The network of a MIL model name (``abmil``, ``transmil``, ``meanpool``, ``maxpool``)."""
    if model == "abmil":
        return GatedAttentionMIL(in_dim, n_clinical=n_clinical, **params)
    if model == "transmil":
        return TransformerMIL(in_dim, n_clinical=n_clinical, **params)
    if model in ("meanpool", "maxpool"):
        return PoolingMIL(in_dim, mode=model[:-4], n_clinical=n_clinical, **params)
    raise ConfigError(f"unknown MIL model {model!r}; choose one of {', '.join(MIL_MODELS)}")
