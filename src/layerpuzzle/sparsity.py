"""Parameter counting and layer sparsity (paper Table 3; docs/sparsity.md).

Removing a layer (or merging two into one, which keeps the layer shape) takes
away exactly one layer's parameters, so for a model with ``L`` layers::

    params_layer = h·(n_q·d_h) + 2·h·(n_kv·d_h) + (n_q·d_h)·h     # q, k, v, o projections
                 + [n_q·d_h + 2·n_kv·d_h]   (q/k/v biases, Qwen2.5)
                 + [2·d_h]                  (per-head q_norm, k_norm, Qwen3)
                 + 3·h·d_ff + 2·h           # gate, up, down; two RMSNorms
    params_total = L·params_layer + V·h·(1 if tied else 2) + h   # embeddings (+ lm_head) + final norm
    sparsity     = n_removed · params_layer / params_total

The number of layers removed for a target sparsity is the ``n`` whose sparsity
is nearest to the target (ties go to the smaller ``n``); this reproduces every
``#Removed`` entry of Table 3 (checked in tests/test_sparsity.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping


@dataclass(frozen=True)
class ArchSpec:
    """The shape numbers of a decoder-only LLaMA-style model that fix its parameter count."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool = False  # Qwen2 / Qwen2.5: biases on q, k and v
    qk_norm: bool = False  # Qwen3: per-head RMSNorm on q and k

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArchSpec":
        """From an ``architecture:`` block of config/paper.yaml (keys = the field names)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown architecture keys {sorted(unknown)}; allowed: {sorted(names)}")
        return cls(**dict(d))

    @classmethod
    def from_hf_config(cls, cfg: Any) -> "ArchSpec":
        """From a transformers config object or a parsed ``config.json`` dict.

        ``qkv_bias`` is true for ``model_type == "qwen2"`` or ``attention_bias``;
        ``qk_norm`` is true for ``model_type == "qwen3"``.  A missing
        ``tie_word_embeddings`` counts as false (the LLaMA/Mistral/Qwen default).
        """
        d: Mapping[str, Any] = cfg if isinstance(cfg, Mapping) else cfg.to_dict()
        model_type = d.get("model_type", "")
        if d.get("mlp_bias"):
            raise ValueError("configs with mlp_bias are not covered by the parameter count")
        n_q = int(d["num_attention_heads"])
        hidden = int(d["hidden_size"])
        return cls(
            hidden_size=hidden,
            num_hidden_layers=int(d["num_hidden_layers"]),
            num_attention_heads=n_q,
            num_key_value_heads=int(d.get("num_key_value_heads") or n_q),
            head_dim=int(d.get("head_dim") or hidden // n_q),
            intermediate_size=int(d["intermediate_size"]),
            vocab_size=int(d["vocab_size"]),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
            qkv_bias=model_type == "qwen2" or bool(d.get("attention_bias", False)),
            qk_norm=model_type == "qwen3",
        )


def layer_params(spec: ArchSpec) -> int:
    """Parameters of one decoder layer (docs/sparsity.md)."""
    h, d_h, d_ff = spec.hidden_size, spec.head_dim, spec.intermediate_size
    q_width = spec.num_attention_heads * d_h
    kv_width = spec.num_key_value_heads * d_h
    attention = h * q_width + 2 * h * kv_width + q_width * h
    if spec.qkv_bias:
        attention += q_width + 2 * kv_width
    if spec.qk_norm:
        attention += 2 * d_h
    return attention + 3 * h * d_ff + 2 * h


def embedding_params(spec: ArchSpec) -> int:
    """Token embedding, plus the lm_head unless tied, plus the final norm."""
    copies = 1 if spec.tie_word_embeddings else 2
    return copies * spec.vocab_size * spec.hidden_size + spec.hidden_size


def total_params(spec: ArchSpec) -> int:
    """All parameters: ``L·params_layer + V·h·(1 if tied else 2) + h``."""
    return spec.num_hidden_layers * layer_params(spec) + embedding_params(spec)


def remaining_params(spec: ArchSpec, n_removed: int) -> int:
    """``params_total − n_removed·params_layer`` (Table 3's #Parameters)."""
    _check_removed(spec, n_removed)
    return total_params(spec) - n_removed * layer_params(spec)


def sparsity(spec: ArchSpec, n_removed: int) -> float:
    """Fraction of all parameters removed with ``n_removed`` layers: ``n·params_layer / params_total``."""
    _check_removed(spec, n_removed)
    return n_removed * layer_params(spec) / total_params(spec)


def removed_for_target(spec: ArchSpec, target_pct: float) -> int:
    """The number of layers whose sparsity is nearest to ``target_pct`` percent (ties: fewer layers)."""
    if not 0 <= target_pct < 100:
        raise ValueError(f"target_pct must be in [0, 100), got {target_pct}")
    candidates = range(spec.num_hidden_layers)
    return min(candidates, key=lambda n: (abs(100 * sparsity(spec, n) - target_pct), n))


def specs_from_config(models: Mapping[str, Mapping[str, Any]]) -> dict[str, ArchSpec]:
    """``{name: ArchSpec}`` for every entry of a config ``models:`` section that has an ``architecture:`` block."""
    return {name: ArchSpec.from_dict(m["architecture"]) for name, m in models.items() if m.get("architecture")}


def _check_removed(spec: ArchSpec, n_removed: int) -> None:
    if not 0 <= n_removed <= spec.num_hidden_layers:
        raise ValueError(f"n_removed={n_removed} outside [0, {spec.num_hidden_layers}]")
