"""Per-layer width surgery on LLaMA-style decoder layers, and the ``width_pruned`` rebuilder.

A layer's attention is cut in whole **KV groups**: KV head ``k`` together with its
``n_rep`` query heads ``k·n_rep … k·n_rep + n_rep − 1`` (the grouping of transformers'
``repeat_kv``).  Removing a group keeps ``num_key_value_groups = n_q / n_kv`` of the layer
unchanged, which is all transformers 5's attention reads besides the Linear shapes (it
reshapes with ``view(..., -1, head_dim)``).  The MLP is cut in intermediate channels
(rows of gate/up, columns of down).  ``head_dim`` and the hidden size never change, so
Qwen3's per-head ``q_norm``/``k_norm`` (shape ``head_dim``) stay as they are.

The model's ``config`` keeps the unpruned shapes; the actual widths are what
:func:`layer_widths` reads from the modules, and what a checkpoint records in
``uneven_layers.json`` (kind ``width_pruned``, :mod:`layerpuzzle.models.uneven`).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from . import architecture as arch
from .uneven import register_rebuilder

KIND = "width_pruned"
WIDTH_KEYS = ("num_attention_heads", "num_key_value_heads", "intermediate_size")


# ---------------------------------------------------------------------------- pure index helpers
def kv_group_rows(groups: Sequence[int], n_rep: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices of the KV groups ``groups``: ``(q rows, k/v rows)``.

    Query head ``h`` belongs to KV group ``h // n_rep``; its rows are ``h·d … h·d + d − 1``.
    """
    g = torch.as_tensor(list(groups), dtype=torch.long)
    heads = (g[:, None] * n_rep + torch.arange(n_rep)).reshape(-1)
    q_rows = (heads[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)
    kv_rows = (g[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)
    return q_rows, kv_rows


def select_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new ``nn.Linear`` keeping rows (``dim=0``, outputs, with their bias) or columns (``dim=1``, inputs)."""
    w = linear.weight
    index = index.to(w.device)
    out_f, in_f = (index.numel(), linear.in_features) if dim == 0 else (linear.out_features, index.numel())
    new = nn.Linear(in_f, out_f, bias=linear.bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w.index_select(dim, index))
        if linear.bias is not None:
            new.bias.copy_(linear.bias.index_select(0, index) if dim == 0 else linear.bias)
    new.weight.requires_grad_(w.requires_grad)
    if linear.bias is not None:
        new.bias.requires_grad_(linear.bias.requires_grad)
    return new


# ---------------------------------------------------------------------------- geometry of one layer
def attention_geometry(layer: nn.Module) -> dict[str, int]:
    """Current KV groups, query heads per group and head_dim of a decoder layer (from its modules)."""
    attn = layer.self_attn
    d = int(attn.head_dim)
    n_kv = attn.k_proj.out_features // d
    n_q = attn.q_proj.out_features // d
    return {"n_kv": n_kv, "n_q": n_q, "n_rep": n_q // n_kv, "head_dim": d}


def layer_widths(model) -> list[dict[str, int]]:
    """``[{layer, num_attention_heads, num_key_value_heads, intermediate_size}]`` of every layer, as built."""
    out = []
    for i, layer in enumerate(arch.layers(model)):
        g = attention_geometry(layer)
        out.append({"layer": i, "num_attention_heads": g["n_q"], "num_key_value_heads": g["n_kv"],
                    "intermediate_size": layer.mlp.gate_proj.out_features})
    return out


# ---------------------------------------------------------------------------- surgery
def keep_kv_groups(layer: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the KV groups ``keep`` (sorted, distinct) of ``layer``'s attention, in place."""
    g = attention_geometry(layer)
    keep = sorted(int(k) for k in keep)
    if not keep or len(set(keep)) != len(keep) or keep[0] < 0 or keep[-1] >= g["n_kv"]:
        raise ValueError(f"KV groups to keep {keep} are not distinct indices in [0, {g['n_kv']}) "
                         f"(at least one must stay)")
    attn = layer.self_attn
    q_rows, kv_rows = kv_group_rows(keep, g["n_rep"], g["head_dim"])
    attn.q_proj = select_linear(attn.q_proj, q_rows, 0)
    attn.k_proj = select_linear(attn.k_proj, kv_rows, 0)
    attn.v_proj = select_linear(attn.v_proj, kv_rows, 0)
    attn.o_proj = select_linear(attn.o_proj, q_rows, 1)
    attn.num_key_value_groups = g["n_rep"]


def keep_mlp_channels(layer: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the intermediate channels ``keep`` (sorted, distinct) of ``layer``'s MLP, in place."""
    mlp = layer.mlp
    n = mlp.gate_proj.out_features
    keep = sorted(int(k) for k in keep)
    if not keep or len(set(keep)) != len(keep) or keep[0] < 0 or keep[-1] >= n:
        raise ValueError(f"MLP channels to keep are not distinct indices in [0, {n}) (at least one must stay)")
    idx = torch.as_tensor(keep, dtype=torch.long)
    mlp.gate_proj = select_linear(mlp.gate_proj, idx, 0)
    mlp.up_proj = select_linear(mlp.up_proj, idx, 0)
    mlp.down_proj = select_linear(mlp.down_proj, idx, 1)
    if hasattr(mlp, "intermediate_size"):
        mlp.intermediate_size = len(keep)


# ---------------------------------------------------------------------------- the rebuilder
def check_width_record(model, record: dict[str, Any]) -> list[dict[str, int]]:
    """The ``layers`` entries of a ``width_pruned`` record, checked against ``model``'s depth and head ratio."""
    layers = record.get("layers")
    n = arch.num_layers(model)
    if not isinstance(layers, list) or len(layers) != n:
        raise ValueError(f"width_pruned record: `layers` must list all {n} layers of the model, "
                         f"got {len(layers) if isinstance(layers, list) else type(layers).__name__}")
    for i, entry in enumerate(layers):
        missing = [k for k in WIDTH_KEYS if k not in entry]
        if missing:
            raise ValueError(f"width_pruned record: layer {i} lacks {missing}; each entry needs {list(WIDTH_KEYS)}")
        g = attention_geometry(arch.layers(model)[i])
        n_q, n_kv, ff = (int(entry[k]) for k in WIDTH_KEYS)
        if not (0 < n_kv <= g["n_kv"] and n_q == n_kv * g["n_rep"]):
            raise ValueError(f"width_pruned record: layer {i} has {n_q} query / {n_kv} KV heads; allowed: "
                             f"1..{g['n_kv']} KV heads, each with its {g['n_rep']} query heads")
        if not 0 < ff <= arch.layers(model)[i].mlp.gate_proj.out_features:
            raise ValueError(f"width_pruned record: layer {i} intermediate_size {ff} outside "
                             f"1..{arch.layers(model)[i].mlp.gate_proj.out_features}")
    return layers


def rebuild_width_pruned(model, record: dict[str, Any]) -> None:
    """Reshape a model built from the unpruned config to the widths of ``record`` (in place).

    The kept units are the first ones; the weights are meant to be overwritten by the checkpoint's.
    """
    for layer, entry in zip(arch.layers(model), check_width_record(model, record)):
        g = attention_geometry(layer)
        if int(entry["num_key_value_heads"]) != g["n_kv"]:
            keep_kv_groups(layer, range(int(entry["num_key_value_heads"])))
        if int(entry["intermediate_size"]) != layer.mlp.gate_proj.out_features:
            keep_mlp_channels(layer, range(int(entry["intermediate_size"])))


register_rebuilder(KIND, rebuild_width_pruned)
