"""Architecture-agnostic access to the parts of a decoder-only causal LM.

Covers the HF LLaMA, Mistral, Qwen2 and Qwen3 classes (``model.model.layers``).
Everything that changes the depth of a model goes through :func:`replace_layers`,
which keeps the config, ``layer_idx`` and per-layer ``layer_types`` consistent.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")


def check_supported(model) -> str:
    mt = model.config.model_type
    if mt not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"model_type {mt!r} is not supported; allowed: {', '.join(SUPPORTED_MODEL_TYPES)}")
    return mt


def decoder(model) -> nn.Module:
    """The bare transformer (``model.model``) holding embeddings, layers and final norm."""
    return model.model


def layers(model) -> nn.ModuleList:
    return model.model.layers


def num_layers(model) -> int:
    return len(model.model.layers)


def final_norm(model) -> nn.Module:
    return model.model.norm


def head_geometry(config) -> dict[str, int]:
    """Attention geometry: query heads, KV heads, head_dim, and query heads per KV head."""
    n_q = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_q
    d_h = getattr(config, "head_dim", None) or config.hidden_size // n_q
    return {"n_q": n_q, "n_kv": n_kv, "head_dim": d_h, "n_rep": n_q // n_kv}


def replace_layers(model, new_layers: Sequence[nn.Module], kept_types: Sequence[str] | None = None):
    """Install ``new_layers`` as the decoder stack, in place, and return the model.

    Renumbers ``self_attn.layer_idx`` (needed by the KV cache), sets
    ``config.num_hidden_layers`` and slices ``config.layer_types`` (Qwen2/3)
    to ``kept_types`` (one entry per new layer).
    """
    model.model.layers = nn.ModuleList(list(new_layers))
    for i, layer in enumerate(model.model.layers):
        layer.self_attn.layer_idx = i
    model.config.num_hidden_layers = len(new_layers)
    if getattr(model.config, "layer_types", None) is not None:
        if kept_types is None:
            raise ValueError("config.layer_types is set: pass kept_types for the new layers")
        model.config.layer_types = list(kept_types)
    return model


def drop_layers(model, remove: Sequence[int]):
    """Remove the decoder layers with the given (current) indices, in place."""
    remove = set(int(i) for i in remove)
    n = num_layers(model)
    bad = [i for i in remove if not 0 <= i < n]
    if bad:
        raise ValueError(f"layer indices {bad} out of range for a model with {n} layers")
    keep = [i for i in range(n) if i not in remove]
    types = getattr(model.config, "layer_types", None)
    return replace_layers(
        model, [model.model.layers[i] for i in keep], [types[i] for i in keep] if types is not None else None
    )


@torch.no_grad()
def count_parameters(model) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total
