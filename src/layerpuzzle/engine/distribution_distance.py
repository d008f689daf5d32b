"""Distances between a dense and a pruned model's outputs (LaCo Table 14).

On the same calibration tokens ``t = 1..T``, with ``p_t = softmax(z_t^dense)`` and
``q_t = softmax(z_t^pruned)`` the next-token distributions:

    KL = (1/T) Σ_t Σ_v p_t(v) (log p_t(v) − log q_t(v))          (nats; dense as the reference)

and the linear and RBF CKA (:mod:`.cka`) between the two models' final hidden states
(after the final norm, the states the LM head reads), tokens as examples.  LaCo
reports the three numbers without formulas; the direction KL(dense ‖ pruned), the
token mean and the final-norm states are our reading.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..models import architecture as arch
from .cka import linear_cka, rbf_cka
from .hidden_states import TokenIds, collect_hidden_states, next_token_logits


def next_token_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> float:
    """Mean over tokens of ``KL(softmax(logits_p) ‖ softmax(logits_q))`` for ``(..., V)`` logits, fp64."""
    if logits_p.shape != logits_q.shape:
        raise ValueError(f"logit shapes differ: {tuple(logits_p.shape)} vs {tuple(logits_q.shape)}")
    lp = F.log_softmax(logits_p.reshape(-1, logits_p.shape[-1]).double(), dim=-1)
    lq = F.log_softmax(logits_q.reshape(-1, logits_q.shape[-1]).double(), dim=-1)
    return float((lp.exp() * (lp - lq)).sum(-1).mean())


def _evenly(x: torch.Tensor, n: int | None) -> torch.Tensor:
    if n is None or x.shape[0] <= n:
        return x
    return x[torch.linspace(0, x.shape[0] - 1, n).round().long()]


def distribution_distances(dense, pruned, ids: TokenIds, *, cka_max_tokens: int | None = 4096,
                           rbf_threshold: float = 1.0, batch_size: int = 8, device=None) -> dict[str, Any]:
    """``{"kl_divergence", "linear_cka", "kernel_cka", "n_tokens", "n_cka_tokens"}`` of ``pruned`` vs ``dense``.

    CKA uses at most ``cka_max_tokens`` evenly spaced tokens (the RBF Gram matrix is n × n).
    """
    finals = []
    for model in (dense, pruned):
        (h,) = collect_hidden_states(model, ids, last_layer_output="final_norm", depths=[arch.num_layers(model)],
                                     batch_size=batch_size, device=device)
        finals.append((h, next_token_logits(model, h)))
    (h_d, z_d), (h_p, z_p) = finals
    xd, xp = _evenly(h_d, cka_max_tokens), _evenly(h_p, cka_max_tokens)
    return {"kl_divergence": next_token_kl(z_d, z_p), "linear_cka": linear_cka(xd, xp),
            "kernel_cka": rbf_cka(xd, xp, rbf_threshold), "n_tokens": int(h_d.shape[0]),
            "n_cka_tokens": int(xd.shape[0]), "rbf_threshold": rbf_threshold}
