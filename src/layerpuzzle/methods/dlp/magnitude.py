"""Mag+: data-free block magnitude (baselines.md §1; CoMe App. A).

    I_l = Σ_{W ∈ layer l} Σ_ij |W_ij|

over every parameter of decoder layer ``l`` whose name contains ``"weight"``:
the seven projections *and* the norm weights (input/post-attention RMSNorm,
Qwen3's q_norm/k_norm); biases (Qwen2) are excluded by the name filter.  As in
shortened-llm ``anal_block_sensitivity_magnitude.py``: per weight the absolute
values are summed in fp32 (rows first, then the row sums), and the block score
is the fp32 sum of its weight scores.  Layers are removed in ascending order;
"+" keeps layers 0-3 and the last two (:func:`.removal.apply_plus_heuristic`).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn

from ...models import architecture as arch
from .removal import RemovalOrder, ranked_order

DISPLAY_NAME = "Mag+"


def layer_weights(layer: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """The scored parameters of a decoder layer: names containing ``"weight"`` (no biases)."""
    for name, p in layer.named_parameters():
        if "weight" in name:
            yield name, p


def weight_score(t: torch.Tensor) -> float:
    """Σ|t| in fp32: per output row first for matrices (shortened-llm ``sum(dim=1)``), then over rows."""
    a = t.detach().float().abs()
    return float((a.sum(dim=1) if a.dim() == 2 else a).sum())


def block_score(weight_scores: Sequence[float]) -> float:
    """The block reduction ``sum`` of the weight scores, in fp32 like ``torch.tensor(list).sum()``."""
    return float(torch.tensor(list(weight_scores), dtype=torch.float32).sum())


@torch.no_grad()
def magnitude_scores(model) -> list[float]:
    """I_l for every decoder layer l of ``model``."""
    return [block_score([weight_score(p) for _, p in layer_weights(layer)]) for layer in arch.layers(model)]


def magnitude_order(model, plus_heuristic: bool = True) -> RemovalOrder:
    """Mag+ removal order (ascending I_l; "+" moves layers 0-3 and the last two to the end)."""
    return ranked_order(DISPLAY_NAME, magnitude_scores(model), plus_heuristic=plus_heuristic,
                        info={"score": "sum |W| over weights (no biases), fp32", "plus_heuristic": plus_heuristic})
