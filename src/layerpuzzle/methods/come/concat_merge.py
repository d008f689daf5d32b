"""Concatenation-based merge of adjacent decoder layers (paper Eq. 5; docs/methods/come.md).

Layer t of the window (ascending index, lower layer first) keeps
K_t = distribute_and_round(N, r)_t units with the highest sensitivity
(KV groups: N = n_kv; FFN channels: N = D_int), in their original order π_t:

    W_k = cat_t W_k^(t)[π_t^kv rows]      W_v, b_k, b_v likewise
    W_q = cat_t W_q^(t)[π_t^q rows]       b_q likewise
    W_o = cat_t W_o^(t)[:, π_t^q]         (input columns)
    W_gate, W_up = cat_t W^(t)[π_t rows]  W_down = cat_t W_down^(t)[:, π_t]
    RMSNorm weights = (1/m) Σ_t w_t       Qwen3 q/k_norm: mean or Σ_t r_t w_t
    o_proj / down_proj biases (if any) = Σ_t r_t b_t

The merged layer therefore computes x + Σ_t Attn_t^sel(norm_avg(x)) and the
FFN analogue: the kept parts of all layers run in parallel on one input.

Query heads of KV group g (``query_mapping``): ``"grouped"`` — {g·n_rep + c},
the HF ``repeat_kv`` pairing (correct); ``"tiled"`` — {c·n_kv + g}, the
released code's ``mask.repeat(n_rep)`` (a bug whenever n_rep > 1 and a layer
keeps a strict subset of its groups).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from ...models import architecture as arch
from .retention import distribute_and_round

QueryMapping = Literal["grouped", "tiled"]
QKNormRule = Literal["mean", "ratio_weighted"]

# module path inside a decoder layer -> which unit mask selects its output rows / input columns
_ROW_SELECTED = {
    "self_attn.q_proj": "query",
    "self_attn.k_proj": "kv",
    "self_attn.v_proj": "kv",
    "mlp.gate_proj": "ffn",
    "mlp.up_proj": "ffn",
}
_COLUMN_SELECTED = {"self_attn.o_proj": "query", "mlp.down_proj": "ffn"}
_LAYER_NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight")
_QK_NORMS = ("self_attn.q_norm.weight", "self_attn.k_norm.weight")


@dataclass(frozen=True)
class UnitSelection:
    """Units one source layer contributes: boolean masks in the layer's own order."""

    kv_groups: Tensor  # (n_kv,) bool
    ffn_channels: Tensor  # (D_int,) bool


def top_k_mask(scores: Tensor, k: int) -> Tensor:
    """Boolean mask of the ``k`` highest scores (stable ascending argsort, last k; k = 0 → none)."""
    scores = torch.as_tensor(scores).detach().reshape(-1).cpu()
    if not 0 <= k <= scores.numel():
        raise ValueError(f"cannot keep {k} of {scores.numel()} units")
    mask = torch.zeros(scores.numel(), dtype=torch.bool)
    if k > 0:
        mask[torch.argsort(scores, stable=True)[-k:]] = True
    return mask


def select_units(ratios: Sequence[float], ffn_sensitivity: Sequence[Tensor], kv_sensitivity: Sequence[Tensor],
                 n_kv: int, intermediate_size: int) -> list[UnitSelection]:
    """Per window layer, the top-K_t KV groups and FFN channels by sensitivity."""
    m = len(ratios)
    if not (len(ffn_sensitivity) == len(kv_sensitivity) == m):
        raise ValueError(f"{m} ratios but {len(ffn_sensitivity)} FFN and {len(kv_sensitivity)} KV sensitivities")
    kv_counts = distribute_and_round(n_kv, ratios)
    ffn_counts = distribute_and_round(intermediate_size, ratios)
    out = []
    for t in range(m):
        if kv_sensitivity[t].numel() != n_kv or ffn_sensitivity[t].numel() != intermediate_size:
            raise ValueError(
                f"layer {t}: expected {n_kv} KV-group and {intermediate_size} FFN scores, got "
                f"{kv_sensitivity[t].numel()} and {ffn_sensitivity[t].numel()}"
            )
        out.append(UnitSelection(top_k_mask(kv_sensitivity[t], kv_counts[t]),
                                 top_k_mask(ffn_sensitivity[t], ffn_counts[t])))
    return out


def query_head_mask(kv_groups: Tensor, n_rep: int, query_mapping: QueryMapping = "grouped") -> Tensor:
    """(n_q,) mask of the query heads that go with the kept KV groups.

    grouped: head h kept iff group h // n_rep is kept; tiled: iff group h % n_kv is kept.
    """
    if query_mapping == "grouped":
        return kv_groups.repeat_interleave(n_rep)
    if query_mapping == "tiled":
        return kv_groups.repeat(n_rep)
    raise ValueError(f"unknown query_mapping {query_mapping!r}; allowed: grouped, tiled")


def _unit_row_masks(sel: UnitSelection, geometry: dict[str, int], query_mapping: QueryMapping) -> dict[str, Tensor]:
    d_h = geometry["head_dim"]
    return {
        "kv": sel.kv_groups.repeat_interleave(d_h),
        "query": query_head_mask(sel.kv_groups, geometry["n_rep"], query_mapping).repeat_interleave(d_h),
        "ffn": sel.ffn_channels,
    }


@torch.no_grad()
def merged_state(layers: Sequence[nn.Module], ratios: Sequence[float], selections: Sequence[UnitSelection],
                 config, *, query_mapping: QueryMapping = "grouped", qk_norm: QKNormRule = "mean") -> dict[str, Tensor]:
    """The merged layer's parameters (Eq. 5), keyed like ``layers[0].state_dict()``."""
    if qk_norm not in ("mean", "ratio_weighted"):
        raise ValueError(f"unknown qk_norm rule {qk_norm!r}; allowed: mean, ratio_weighted")
    geometry = arch.head_geometry(config)
    params = [dict(layer.named_parameters()) for layer in layers]
    names = list(params[0])
    if any(list(p) != names for p in params[1:]):
        raise ValueError("all layers of a merge window must have the same parameters")
    masks = [_unit_row_masks(s, geometry, query_mapping) for s in selections]
    r = [float(x) for x in ratios]

    state: dict[str, Tensor] = {}
    for name in names:
        module, _ = name.rsplit(".", 1)
        values = [p[name].detach() for p in params]
        if module in _ROW_SELECTED:
            kind = _ROW_SELECTED[module]
            state[name] = torch.cat([v[mk[kind].to(v.device)] for v, mk in zip(values, masks)], dim=0)
        elif module in _COLUMN_SELECTED and name.endswith(".weight"):
            kind = _COLUMN_SELECTED[module]
            state[name] = torch.cat([v[:, mk[kind].to(v.device)] for v, mk in zip(values, masks)], dim=1)
        elif module in _COLUMN_SELECTED:  # output bias of o_proj / down_proj
            state[name] = sum(rt * v for rt, v in zip(r, values))
        elif name in _LAYER_NORMS or (name in _QK_NORMS and qk_norm == "mean"):
            state[name] = torch.stack(values).mean(dim=0)
        elif name in _QK_NORMS:
            state[name] = sum(rt * v for rt, v in zip(r, values))
        else:
            raise NotImplementedError(f"concat_merge has no rule for parameter {name!r}")
        if state[name].shape != values[0].shape:
            raise ValueError(f"merged {name} has shape {tuple(state[name].shape)}, expected {tuple(values[0].shape)}")
    return state


def concat_merge(layers: Sequence[nn.Module], ratios: Sequence[float], ffn_sensitivity: Sequence[Tensor],
                 kv_sensitivity: Sequence[Tensor], config, *, query_mapping: QueryMapping = "grouped",
                 qk_norm: QKNormRule = "mean") -> nn.Module:
    """A new decoder layer of the original shape merging ``layers`` (window order) by Eq. 5.

    ``ratios`` are the retention ratios r_t (Σ = 1), ``*_sensitivity`` the
    per-layer unit scores of :mod:`layerpuzzle.engine.channel_sensitivity`.
    The inputs are not modified; the result is a deep copy of ``layers[0]``
    (so it keeps that layer's attention type) with replaced weights.
    """
    if len(layers) != len(ratios):
        raise ValueError(f"{len(layers)} layers but {len(ratios)} ratios")
    geometry = arch.head_geometry(config)
    selections = select_units(ratios, ffn_sensitivity, kv_sensitivity, geometry["n_kv"], config.intermediate_size)
    state = merged_state(layers, ratios, selections, config, query_mapping=query_mapping, qk_norm=qk_norm)
    merged = copy.deepcopy(layers[0])
    with torch.no_grad():
        for name, p in merged.named_parameters():
            p.copy_(state[name])
    return merged


def merge_window(model, start: int, stop: int, ratios: Sequence[float], ffn_sensitivity: Sequence[Tensor],
                 kv_sensitivity: Sequence[Tensor], **switches):
    """Replace layers ``start..stop`` (inclusive) of ``model`` in place by their :func:`concat_merge`.

    The merged layer sits at index ``start`` and keeps ``config.layer_types[start]``.
    ``switches``: ``query_mapping``, ``qk_norm``.  Returns the model.
    """
    n = arch.num_layers(model)
    if not 0 <= start < stop < n:
        raise ValueError(f"merge window {start}..{stop} is not a window of >= 2 layers in a {n}-layer model")
    old = list(arch.layers(model))
    merged = concat_merge(old[start:stop + 1], ratios, ffn_sensitivity, kv_sensitivity, model.config, **switches)
    types = getattr(model.config, "layer_types", None)
    kept_types = None if types is None else list(types[:start + 1]) + list(types[stop + 1:])
    return arch.replace_layers(model, old[:start] + [merged] + old[stop + 1:], kept_types)
