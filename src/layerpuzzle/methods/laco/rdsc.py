"""RDSC layer merge (LaCo paper Eq. 1; docs/methods/laco.md).

``described`` — the paper's Reserving-Differences-while-Seeking-Common merge of
layer ``l`` with the ``m`` layers above it, for every projection weight and bias:

    θ* = θ_l + Σ_{k=1..m} (θ_{l+k} − θ_l)

``released`` — what ``merge_layers_return_model`` in the LaCo notebook computes.
It updates the base layer in place with ``W_base += W_{l+k} − W_base`` where
``W_base`` is the already-updated copy, so after the loop ``W_base = W_{l+m}``:
the base layer gets the 7 projection matrices of the *last* layer of the group
(issues #4, #5 of yangyifei729/LaCo).

In both variants the base layer keeps its own RMSNorm weights (input,
post-attention and Qwen3 q/k norms): the released code enumerates only the 7
projection weights, and we read Eq. 1 (SAN and MLP parameters) as the linear maps.
Biases (Qwen2 q/k/v): ``described`` applies Eq. 1 to them like to the weights;
``released`` leaves the base layer's biases untouched (the code never sees them).
"""

from __future__ import annotations

import copy
from typing import Literal, Sequence

import torch
from torch import nn

# The 7 projection Linear modules of a LLaMA/Mistral/Qwen decoder layer.
PROJECTIONS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)
VARIANTS = ("described", "released")
Variant = Literal["described", "released"]


def rdsc_tensor(base: torch.Tensor, others: Sequence[torch.Tensor]) -> torch.Tensor:
    """θ_l + Σ_k (θ_{l+k} − θ_l), accumulated in fp32 and cast back to ``base.dtype``."""
    b = base.float()
    out = b.clone()
    for t in others:
        out += t.float() - b
    return out.to(base.dtype)


@torch.no_grad()
def rdsc_merge(layers: Sequence[nn.Module], variant: Variant = "described") -> nn.Module:
    """A new decoder layer standing for ``layers`` (base = ``layers[0]``); the inputs are not changed."""
    if variant not in VARIANTS:
        raise ValueError(f"LaCo variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    merged = copy.deepcopy(layers[0])
    if len(layers) == 1:
        return merged
    for name in PROJECTIONS:
        target = merged.get_submodule(name)
        sources = [layer.get_submodule(name) for layer in layers]
        if variant == "released":
            target.weight.copy_(sources[-1].weight)
            continue
        target.weight.copy_(rdsc_tensor(sources[0].weight, [s.weight for s in sources[1:]]))
        if target.bias is not None:
            target.bias.copy_(rdsc_tensor(sources[0].bias, [s.bias for s in sources[1:]]))
    return merged
