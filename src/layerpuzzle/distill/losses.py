"""Distillation and regression losses of the post-training methods.

* :func:`hidden_kl` — CoMe Eq. 6 (come.md §7), with the open points fixed as
  this project's explicit assumptions: σ = softmax over the **hidden dimension**
  of each token's residual-stream vector, temperature τ (default 1), **forward** KL
  (teacher first), scale c = mean over tokens (batch × sequence)::

      L = 1/(B·S) Σ_{b,s} Σ_d p_T[d] (log p_T[d] − log p_S[d]),   p = softmax(H[b, s, :] / τ)

  τ > 1 softens σ: models with a few massive residual dimensions (SmolLM2 has one)
  make softmax(H) one-hot, and the KL at τ = 1 then sees almost nothing else.

* :func:`batch_dim_kl` — FuseGPT's released loss (baselines.md §7):
  ``kl_div(log_softmax(S, dim=0), softmax(T, dim=0), reduction="batchmean")``,
  i.e. softmax over **dim 0** (the sequences of a batch), summed and divided by B.
* :func:`hidden_mse` — LLM-Streamline's MSE variant (baselines.md §8), mean over all elements.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def hidden_kl(teacher: Tensor, student: Tensor, temperature: float = 1.0) -> Tensor:
    """KL(softmax(teacher/τ) ‖ softmax(student/τ)) over the last (hidden) dim, mean over tokens, in fp32."""
    if teacher.shape != student.shape:
        raise ValueError(f"teacher {tuple(teacher.shape)} and student {tuple(student.shape)} differ in shape")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p = F.log_softmax(teacher.float() / temperature, dim=-1)
    log_q = F.log_softmax(student.float() / temperature, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()


def batch_dim_kl(student: Tensor, teacher: Tensor) -> Tensor:
    """FuseGPT: ``F.kl_div(log_softmax(S, 0), softmax(T, 0), reduction='batchmean')`` in fp32."""
    return F.kl_div(F.log_softmax(student.float(), dim=0), F.softmax(teacher.float(), dim=0), reduction="batchmean")


def hidden_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all elements, in fp32."""
    return F.mse_loss(prediction.float(), target.float())


def lm_loss(logits: Tensor, input_ids: Tensor) -> Tensor:
    """Next-token cross-entropy, mean over the B·(S−1) shifted positions."""
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1))


