"""Unit importances of the pruned layers from one set of calibration statistics.

For every layer in ``attention_layers`` the importance of each KV group, for every layer in
``mlp_layers`` that of each intermediate channel (:mod:`.importance`), from the salience of
:mod:`.salience` with the gradient / Fisher diagonal of :mod:`.gradients`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ...models import architecture as arch
from ...models.width import attention_geometry
from .gradients import fisher_diagonal, loss_gradient
from .importance import aggregate, attention_terms, mlp_terms
from .salience import needs_fisher, needs_gradient, salience

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


def target_weights(model, attention_layers: Sequence[int], mlp_layers: Sequence[int]) -> dict[tuple[int, str], torch.nn.Parameter]:
    """``{(layer, projection): weight}`` of every weight whose salience is needed."""
    layers = arch.layers(model)
    out = {}
    for i in attention_layers:
        out.update({(i, n): getattr(layers[i].self_attn, n).weight for n in ATTENTION})
    for i in mlp_layers:
        out.update({(i, n): getattr(layers[i].mlp, n).weight for n in MLP})
    return out


def unit_scores(model, calib_ids: torch.Tensor, attention_layers: Sequence[int], mlp_layers: Sequence[int], *,
                importance: str, aggregation: str, batch_size: int | None = None
                ) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """``({layer: KV-group importances}, {layer: MLP-channel importances})`` (fp32, on the CPU)."""
    weights = target_weights(model, attention_layers, mlp_layers)
    keys, params = list(weights), list(weights.values())
    g = dict(zip(keys, loss_gradient(model, calib_ids, params, batch_size))) if needs_gradient(importance) else {}
    h = dict(zip(keys, fisher_diagonal(model, calib_ids, params))) if needs_fisher(importance) else {}

    def s(key):
        return salience(weights[key], g.get(key), h.get(key), importance)

    layers = arch.layers(model)
    attn, mlp = {}, {}
    for i in attention_layers:
        geo = attention_geometry(layers[i])
        terms = attention_terms(*(s((i, n)) for n in ATTENTION), n_kv=geo["n_kv"], n_rep=geo["n_rep"],
                                head_dim=geo["head_dim"])
        attn[i] = aggregate(terms, aggregation).cpu()
    for i in mlp_layers:
        mlp[i] = aggregate(mlp_terms(*(s((i, n)) for n in MLP)), aggregation).cpu()
    return attn, mlp


def lowest(scores: torch.Tensor, n: int) -> list[int]:
    """The ``n`` units of lowest importance (ties: lower index first), sorted."""
    return sorted(torch.argsort(scores, stable=True)[:n].tolist())
