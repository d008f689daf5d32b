"""Mag+: data-free block magnitude (CoMe App. A; docs/methods/mag_plus.md).

    I_l = Σ_{W ∈ layer l} Σ_ij |W_ij|

over every parameter of decoder layer ``l`` whose name contains ``"weight"``:
the seven projections *and* the norm weights (input/post-attention RMSNorm,
Qwen3's q_norm/k_norm); biases (Qwen2) are excluded by the name filter.  As in
shortened-llm ``anal_block_sensitivity_magnitude.py``: per weight the absolute
values are summed in fp32 (rows first, then the row sums), and the block score
is the fp32 sum of its weight scores.  Layers are removed in ascending order;
"+" keeps layers 0-3 and the last two (:func:`.removal.apply_plus_heuristic`).

``reduction="released"`` is the CoMe code (``methods/magnitude.py``, which the
paper's Mag+ rows came from): the same sums, but each weight's ``sum(1)`` and
``sum(0)`` in the *model* dtype (bf16/fp16 on the paper's models, so close
layers can tie and the lower index wins), over the weights whose name holds
``proj`` or ``norm``.  The code adds the same score once per calibration
window, a constant factor that does not change the order; it is left out.
On an fp32 model the two reductions are identical.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn

from ...models import architecture as arch
from .removal import RemovalOrder, ranked_order
from .. import registry

DISPLAY_NAME = registry.display_name("mag_plus")


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


REDUCTIONS = ("fp32", "released")


def released_weight(name: str) -> bool:
    """The CoMe code's weight filter: ``weight`` in the name and ``proj`` or ``norm`` in it."""
    return "weight" in name and ("proj" in name or "norm" in name)


def released_weight_score(t: torch.Tensor) -> float:
    """Σ|t| as the CoMe code reduces it: in ``t``'s dtype, ``sum(1)`` for matrices, then ``sum(0)``, ``.item()``."""
    a = t.detach().abs()
    if a.dim() == 2:
        a = a.sum(1)
    return a.sum(dim=0).item()


@torch.no_grad()
def magnitude_scores(model, reduction: str = "fp32") -> list[float]:
    """I_l for every decoder layer l of ``model`` (``reduction``: fp32 or the released model-dtype sums)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}; allowed: {', '.join(REDUCTIONS)}")
    if reduction == "released":
        return [block_score([released_weight_score(p) for n, p in layer.named_parameters() if released_weight(n)])
                for layer in arch.layers(model)]
    return [block_score([weight_score(p) for _, p in layer_weights(layer)]) for layer in arch.layers(model)]


def magnitude_order(model, plus_heuristic: bool = True, reduction: str = "fp32") -> RemovalOrder:
    """Mag+ removal order (ascending I_l; "+" moves layers 0-3 and the last two to the end)."""
    info = {"score": "sum |W| over weights (no biases), fp32", "plus_heuristic": plus_heuristic}
    if reduction != "fp32":  # the default's record stays as it was
        info.update(score="sum |W| over proj/norm weights, reduced in the model dtype (released)",
                    reduction=reduction)
    return ranked_order(DISPLAY_NAME, magnitude_scores(model, reduction), plus_heuristic=plus_heuristic, info=info)
