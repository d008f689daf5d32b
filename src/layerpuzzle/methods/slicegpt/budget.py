"""Sliced widths and their parameter count (SliceGPT paper, section "Slicing"; the reference code's width rule).

Width from a slicing fraction s (reference ``run_slicegpt.py``)::

    d' = floor((1 − s)·d) − (floor((1 − s)·d) mod r)        # r = round_interval (8), rounded down

Parameters of the sliced model with every residual site at width d' and the LM head reading d_head
(d_head = d' when the head is sliced, else d, the reference default), q_w = n_q·d_h, kv_w = n_kv·d_h::

    P(d') = V·d' + V·d_head                                   # embeddings (sliced) + untied lm_head
          + L·[ d'·(q_w + 2·kv_w) + q_w·d' + 3·d_ff·d'        # q, k, v, o, gate, up, down on d'
                + [q_w + 2·kv_w] + [2·d_h]                    # q/k/v biases (Qwen2), q/k norms (Qwen3)
                + d'·d' + d'·d' ]                             # shortcuts Q_attn (d'×d'), Q_mlp (d'×d')
          + (d_ff + d')·(d_head − d')                         # last layer: down_proj and Q_mlp reach d_head

The RMSNorms become weightless (their scales are folded into the next linear layers), so they count 0.
The dense count is the project's (``layerpuzzle.sparsity.total_params``: a tied embedding counts once), so
untying the embedding of a tied model costs V·d' extra parameters that slicing has to win back.

Width from a parameter target t (fraction of dense parameters removed): d' ranges over the multiples of r
in [r, d] and sparsity(d') = 1 − P(d')/P_dense falls as d' grows.  ``at_most`` (default) picks the largest
sparsity ≤ t (LaCo compares baselines at a ratio "equal or slightly smaller" than its own), ``at_least`` the
smallest sparsity ≥ t, ``nearest`` the nearest one (ties: the wider d').  The slicing fraction reported is
then s = 1 − d'/d.
"""

from __future__ import annotations

from ...sparsity import ArchSpec, total_params


def width_for_slicing(hidden_size: int, slicing: float, round_interval: int = 8) -> int:
    """``d'`` for slicing fraction ``s``: ``int((1 − s)·d)`` rounded down to a multiple of ``round_interval``."""
    width = int((1.0 - float(slicing)) * hidden_size)
    width -= width % round_interval
    if width < 1:
        raise ValueError(f"SliceGPT 'slicing' = {slicing!r} leaves no dimension of hidden size {hidden_size} "
                         f"at round_interval {round_interval}; allowed: a fraction below "
                         f"{1 - round_interval / hidden_size:.6g}")
    return width


def sliced_params(spec: ArchSpec, width: int, head_width: int) -> int:
    """``P(d')`` of the module docstring (every residual site at ``width``, lm_head reading ``head_width``)."""
    d_h, d_ff = spec.head_dim, spec.intermediate_size
    q_w, kv_w = spec.num_attention_heads * d_h, spec.num_key_value_heads * d_h
    per_layer = width * (q_w + 2 * kv_w) + q_w * width + 3 * d_ff * width + 2 * width * width
    if spec.qkv_bias:
        per_layer += q_w + 2 * kv_w
    if spec.qk_norm:
        per_layer += 2 * d_h
    last_extra = (d_ff + width) * (head_width - width)
    return spec.vocab_size * (width + head_width) + spec.num_hidden_layers * per_layer + last_extra


def dense_params(spec: ArchSpec) -> int:
    """The dense model's parameters as the project counts them (a tied embedding once)."""
    return total_params(spec)


def param_sparsity(spec: ArchSpec, width: int, slice_head: bool) -> float:
    """``1 − P(d')/P_dense``."""
    head = width if slice_head else spec.hidden_size
    return 1.0 - sliced_params(spec, width, head) / dense_params(spec)


def width_for_target(spec: ArchSpec, target: float, round_interval: int = 8, rule: str = "at_most",
                     slice_head: bool = False) -> int:
    """The grid width whose parameter sparsity meets ``target`` by ``rule`` (module docstring)."""
    widths = list(range(round_interval, spec.hidden_size + 1, round_interval))
    sp = {w: param_sparsity(spec, w, slice_head) for w in widths}
    if rule == "at_most":
        ok = [w for w in widths if sp[w] <= target]
        pick = min(ok) if ok else None
    elif rule == "at_least":
        ok = [w for w in widths if sp[w] >= target]
        pick = max(ok) if ok else None
    elif rule == "nearest":
        pick = min(widths, key=lambda w: (abs(sp[w] - target), -w))
    else:
        raise ValueError(f"SliceGPT 'target_rule' = {rule!r} is not allowed; allowed: at_most, at_least, nearest")
    if pick is None:
        lo, hi = sp[widths[-1]], sp[widths[0]]
        raise ValueError(f"SliceGPT 'target' = {target!r} cannot be met with rule {rule!r}: the widths "
                         f"{widths[0]}..{widths[-1]} (multiples of {round_interval}) give parameter sparsities "
                         f"{lo:.4f}..{hi:.4f}; allowed: a target in that range")
    return pick
