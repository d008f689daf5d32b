"""Rotating and slicing the weights that touch the residual stream (SliceGPT paper, sections
"A transformation per block" and "Slicing").

Row-vector convention: a residual signal x (1 × d) is carried as ``x' = x·Q[:, :k]`` (rotated, then the
last d − k coordinates deleted: ``Q·D`` in the paper).  A Linear ``y = x·Wᵀ + b`` (W: out × in)

* that *reads* the stream (q/k/v, gate/up, lm_head) gets ``W ← W·Q[:, :k]`` (columns), so ``x'·W'ᵀ ≈ x·Wᵀ``;
* that *writes* to it (o_proj, down_proj) gets ``W ← Q[:, :k]ᵀ·W`` and ``b ← b·Q[:, :k]`` (rows), so its
  output arrives in the rotated, sliced basis;
* the token embedding (rows on the stream) gets ``E ← E·Q[:, :k]``.

All products run in float64 and are cast back to the weight's dtype.
"""

from __future__ import annotations

import torch
from torch import nn


def _set_weight(module: nn.Module, weight: torch.Tensor, name: str = "weight") -> None:
    old = getattr(module, name)
    setattr(module, name, nn.Parameter(weight.to(dtype=old.dtype, device=old.device).contiguous(),
                                       requires_grad=old.requires_grad))


@torch.no_grad()
def rotate_input(linear: nn.Linear, Q: torch.Tensor, keep: int) -> None:
    """``W ← W·Q[:, :keep]``: the layer now reads the rotated stream sliced to ``keep`` coordinates."""
    W = linear.weight.data.to(torch.float64)
    _set_weight(linear, W @ Q[:, :keep].to(W.device))
    linear.in_features = keep


@torch.no_grad()
def rotate_output(linear: nn.Linear, Q: torch.Tensor, keep: int) -> None:
    """``W ← Q[:, :keep]ᵀ·W``, ``b ← b·Q[:, :keep]``: the layer now writes the rotated, sliced stream."""
    Qk = Q[:, :keep].to(linear.weight.device)
    _set_weight(linear, Qk.T @ linear.weight.data.to(torch.float64))
    if linear.bias is not None:
        _set_weight(linear, linear.bias.data.to(torch.float64) @ Qk, "bias")
    linear.out_features = keep


@torch.no_grad()
def rotate_embedding(embedding: nn.Embedding, Q: torch.Tensor, keep: int) -> None:
    """``E ← E·Q[:, :keep]``."""
    E = embedding.weight.data.to(torch.float64)
    _set_weight(embedding, E @ Q[:, :keep].to(E.device))
    embedding.embedding_dim = keep
