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
``#Removed`` entry of Table 3 (checked in tests/test_sparsity.py). A layer-count
target ``n{k}`` removes ``k`` layers, ``1 <= k < L`` (:func:`removed_for`).

MKA reports its own compression ratio beside the parameter sparsity:
:func:`compression_ratio`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Mapping

# The label of a layer-count target: ``n`` + the number of layers removed (n8 = 8 layers), k >= 1.
LAYER_TARGET_RE = r"n[1-9]\d*"


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


def layer_count(target: Any) -> int | None:
    """``k`` of a layer-count target (its label ``"n8"`` or the rule parameter ``{"layers": 8}``); None for a
    sparsity target (a fraction of all parameters). Anything else raises ValueError saying what is allowed."""
    if isinstance(target, Mapping):
        k = target.get("layers")
        if set(target) != {"layers"} or isinstance(k, bool) or not isinstance(k, int):
            raise ValueError(f"layer-count target {dict(target)!r} is not allowed; allowed: {{'layers': k}} with an "
                             f"integer k >= 1")
        return k
    if isinstance(target, str):
        if not re.fullmatch(LAYER_TARGET_RE, target):
            raise ValueError(f"target {target!r} is not allowed; allowed: a fraction in (0, 1) or n<k>, k >= 1 "
                             f"layers removed (n8)")
        return int(target[1:])
    if isinstance(target, bool) or not isinstance(target, (int, float)):
        raise ValueError(f"target {target!r} is not allowed; allowed: a fraction in (0, 1) or n<k>, k >= 1 "
                         f"layers removed (n8)")
    return None


def layer_count_error(spec: ArchSpec, k: int) -> str | None:
    """Why removing ``k`` layers of ``spec`` is not a target (None when 1 <= k < L): at least one layer must
    go and one must stay."""
    n_layers = spec.num_hidden_layers
    if 1 <= k < n_layers:
        return None
    return (f"removes {k} of the model's {n_layers} layers; allowed: n1..n{n_layers - 1} "
            f"(at least one layer removed, at least one kept)")


def removed_for(spec: ArchSpec, target: Any) -> int:
    """Layers removed for ``target``: ``k`` for a layer-count target (``"n8"``, ``{"layers": 8}``; ValueError
    unless 1 <= k < L), else the Table 3 rule for a fraction of all parameters (:func:`removed_for_target`;
    0 when it removes no layer)."""
    k = layer_count(target)
    if k is None:
        return removed_for_target(spec, 100.0 * float(target))
    why = layer_count_error(spec, k)
    if why:
        raise ValueError(f"layer-count target n{k} {why}")
    return k


def compression_ratio(n_layers: int, kept_layers: int, quant_factor: float = 1.0) -> float:
    """MKA's compression ratio ``CR = (L − L_kept / Q) / L`` as a fraction.

    Definition of Liu et al., "Pruning via Merging: Compressing LLMs via Manifold Alignment Based Layer
    Merging" (MKA, 2024), footnote 3: ``L`` the dense model's decoder layers, ``L_kept`` the layers retained,
    ``Q`` the quantization factor (the bit width of the weights relative to 16-bit: ``Q = 4`` for int4,
    ``Q = 1`` without quantization). Embeddings and the LM head are ignored, so unlike :func:`sparsity` it
    depends on the layer counts only: removing 13 of 32 layers is CR = 13/32 = 40.625 %, and keeping 18 of
    32 layers in int4 is (32 − 18/4)/32 = 85.9375 %.
    """
    if isinstance(n_layers, bool) or int(n_layers) != n_layers or n_layers < 1:
        raise ValueError(f"n_layers={n_layers!r}: allowed: an integer >= 1")
    if isinstance(kept_layers, bool) or int(kept_layers) != kept_layers or not 0 <= kept_layers <= n_layers:
        raise ValueError(f"kept_layers={kept_layers!r}: allowed: an integer in [0, {n_layers}]")
    if not quant_factor >= 1:
        raise ValueError(f"quant_factor={quant_factor!r}: allowed: a number >= 1 (1 = not quantized, 4 = int4)")
    return (n_layers - kept_layers / quant_factor) / n_layers


def specs_from_config(models: Mapping[str, Mapping[str, Any]]) -> dict[str, ArchSpec]:
    """``{name: ArchSpec}`` for every entry of a config ``models:`` section that has an ``architecture:`` block."""
    return {name: ArchSpec.from_dict(m["architecture"]) for name, m in models.items() if m.get("architecture")}


def _check_removed(spec: ArchSpec, n_removed: int) -> None:
    if not 0 <= n_removed <= spec.num_hidden_layers:
        raise ValueError(f"n_removed={n_removed} outside [0, {spec.num_hidden_layers}]")
