"""How many units a ratio removes, and the ratio that removes a given fraction of the parameters.

LLM-Pruner's local (per-layer) rule (``MetaPruner.prune_local``): a group with ``N`` channels
in units of ``w`` channels (``w`` = head_dim for a KV group, 1 for an MLP channel) loses

    n_units = (N − ⌊N·(1 − ratio)⌋) // w

units.  The floor here is float-robust (``⌊x + 1e-9⌋``) so that e.g. ``10·(1 − 0.9)`` counts
as 1, not 0.9999999999999998.  The ratio is a *channel* ratio; the parameter fraction it
removes depends on which layers are pruned and on the embeddings, so
:func:`ratio_for_sparsity` solves it from the parameter count (exact, over all ratios where a
count changes) to land at, or just below, a target fraction of the model's parameters.
"""

from __future__ import annotations

import math
from typing import Sequence

from ...models import architecture as arch
from ...models.width import attention_geometry

EPS = 1e-9


def units_to_prune(n_units: int, unit_width: int, ratio: float) -> int:
    """Units LLM-Pruner's local rule removes from ``n_units`` units of ``unit_width`` channels."""
    n = n_units * unit_width
    return (n - math.floor(n * (1.0 - ratio) + EPS)) // unit_width


def _numel(linear) -> int:
    return linear.weight.numel() + (linear.bias.numel() if linear.bias is not None else 0)


def attention_unit_params(layer) -> int:
    """Parameters one KV group holds in ``layer`` (q/k/v rows with biases, o columns)."""
    a = layer.self_attn
    n_kv = attention_geometry(layer)["n_kv"]
    return (_numel(a.q_proj) + _numel(a.k_proj) + _numel(a.v_proj) + a.o_proj.weight.numel()) // n_kv


def mlp_unit_params(layer) -> int:
    """Parameters one intermediate channel holds in ``layer`` (gate/up rows with biases, down column)."""
    m = layer.mlp
    return (_numel(m.gate_proj) + _numel(m.up_proj) + m.down_proj.weight.numel()) // m.gate_proj.out_features


def removed_params(model, ratio: float, attention_layers: Sequence[int], mlp_layers: Sequence[int]) -> int:
    """Parameters removed by ``ratio`` in the given layers (closed form; nothing is changed)."""
    layers = arch.layers(model)
    total = 0
    for i in attention_layers:
        g = attention_geometry(layers[i])
        total += units_to_prune(g["n_kv"], g["head_dim"], ratio) * attention_unit_params(layers[i])
    for i in mlp_layers:
        total += units_to_prune(layers[i].mlp.gate_proj.out_features, 1, ratio) * mlp_unit_params(layers[i])
    return total


def empties_a_layer(model, ratio: float, attention_layers: Sequence[int], mlp_layers: Sequence[int]) -> bool:
    """Whether ``ratio`` would remove all KV groups or all MLP channels of one of the layers."""
    layers = arch.layers(model)
    for i in attention_layers:
        g = attention_geometry(layers[i])
        if units_to_prune(g["n_kv"], g["head_dim"], ratio) >= g["n_kv"]:
            return True
    n_ff = [layers[i].mlp.gate_proj.out_features for i in mlp_layers]
    return any(units_to_prune(n, 1, ratio) >= n for n in n_ff)


def ratio_for_sparsity(model, target_fraction: float, attention_layers: Sequence[int],
                       mlp_layers: Sequence[int]) -> tuple[float, float]:
    """``(ratio, achieved)``: a ratio removing the most parameters ≤ ``target_fraction`` of all of them.

    Every count a layer can take is reached at a ratio ``k/N`` (the largest ratio giving that count),
    so these are the candidates; removal is monotone in the ratio.  Ratios that would remove every
    unit of some layer are not candidates.
    """
    if not 0 < target_fraction < 1:
        raise ValueError(f"LLM-Pruner `target_fraction`: value {target_fraction!r} is not allowed; "
                         f"allowed: a number in (0, 1)")
    total = arch.count_parameters(model)
    layers = arch.layers(model)
    sizes = {attention_geometry(layers[i])["n_kv"] * attention_geometry(layers[i])["head_dim"]
             for i in attention_layers}
    sizes |= {layers[i].mlp.gate_proj.out_features for i in mlp_layers}
    candidates = sorted({k / n for n in sizes for k in range(1, n)})
    best = None
    for r in candidates:
        if empties_a_layer(model, r, attention_layers, mlp_layers):
            break
        removed = removed_params(model, r, attention_layers, mlp_layers)
        if removed / total > target_fraction + 1e-12:
            break  # monotone: every larger ratio removes at least as much
        if removed > 0 and (best is None or removed > best[1]):
            best = (r, removed)
    if best is None:
        smallest = removed_params(model, candidates[0], attention_layers, mlp_layers) / total if candidates else 0
        raise ValueError(f"LLM-Pruner target_fraction {target_fraction!r} is below the smallest step this model "
                         f"allows ({smallest:.6g} of the parameters); allowed: a larger target")
    return best[0], best[1] / total
