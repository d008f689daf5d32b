"""Group importance of LLM-Pruner's block-wise units (the paper's §3.2 group aggregation).

A **unit** is what is removed together: in attention a KV group (k/v rows of KV head ``k``,
q rows and o columns of its ``n_rep`` query heads), in the MLP one intermediate channel
(gate and up rows, down column).  Following the released ``TaylorImportance`` with its
``consecutive_groups``:

1. every member weight ``W`` of the group contributes, per *channel position* ``c`` of the
   unit (``c`` < head_dim in attention, a single position in the MLP), the term
   ``T_W(u, c) = Σ |s|`` over the weights of ``W`` in that unit at that position (rows for
   q/k/v/gate/up, columns for o/down; a KV group's ``n_rep`` query heads are summed);
2. the terms are combined across the member weights by the aggregation (``sum`` — the
   paper's summation and the released default —, ``mean``, ``max``, ``prod`` or ``first``,
   the root weight: q_proj in multi-head attention as ``hf_prune.py``, k_proj with grouped KV
   heads as ``llama3.py``, gate_proj in the MLP);
3. the combined terms are summed over the unit's positions.

With ``sum`` the importance is simply ``I(u) = Σ_{w ∈ u} |s(w)|``.  Biases and norm weights
do not count (the released code uses ``layer.weight`` only); removing a unit removes its
biases too.
"""

from __future__ import annotations

import torch

from .settings import AGGREGATIONS, check_choice


def attention_terms(s_q: torch.Tensor, s_k: torch.Tensor, s_v: torch.Tensor, s_o: torch.Tensor, *,
                    n_kv: int, n_rep: int, head_dim: int) -> torch.Tensor:
    """``(4, n_kv, head_dim)`` per-position terms of the KV groups, root weight first.

    Member order: (q, k, v, o) when ``n_rep == 1``, else (k, v, q, o).
    """
    def rows(s, heads):  # (heads·d, in) -> (heads, d)
        return s.abs().sum(1).view(heads, head_dim)

    q = rows(s_q, n_kv * n_rep).view(n_kv, n_rep, head_dim).sum(1)
    k, v = rows(s_k, n_kv), rows(s_v, n_kv)
    o = s_o.abs().sum(0).view(n_kv, n_rep, head_dim).sum(1)
    return torch.stack((q, k, v, o) if n_rep == 1 else (k, v, q, o))


def mlp_terms(s_gate: torch.Tensor, s_up: torch.Tensor, s_down: torch.Tensor) -> torch.Tensor:
    """``(3, I, 1)`` per-channel terms of the MLP channels, root (gate) first."""
    return torch.stack((s_gate.abs().sum(1), s_up.abs().sum(1), s_down.abs().sum(0))).unsqueeze(-1)


def aggregate(terms: torch.Tensor, how: str) -> torch.Tensor:
    """Combine ``(members, units, positions)`` terms over the members, then sum over positions: ``(units,)``."""
    check_choice("aggregation", how, AGGREGATIONS)
    if how == "sum":
        per_pos = terms.sum(0)
    elif how == "mean":
        per_pos = terms.mean(0)
    elif how == "max":
        per_pos = terms.max(0).values
    elif how == "prod":
        per_pos = terms.prod(0)
    else:
        per_pos = terms[0]
    return per_pos.sum(-1)
