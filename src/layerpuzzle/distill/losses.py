"""Distillation and regression losses of the post-training methods.

* :func:`hidden_kl` — CoMe Eq. 6 (docs/methods/come_sp.md), with the open points fixed as
  this project's explicit assumptions: σ = softmax over the **hidden dimension**
  of each token's residual-stream vector, temperature τ (default 1), **forward** KL
  (teacher first), scale c = mean over tokens (batch × sequence)::

      L = 1/(B·S) Σ_{b,s} Σ_d p_T[d] (log p_T[d] − log p_S[d]),   p = softmax(H[b, s, :] / τ)

  τ > 1 softens σ: models with a few massive residual dimensions (SmolLM2 has one)
  make softmax(H) one-hot, and the KL at τ = 1 then sees almost nothing else.
  ``axis="batch"`` is the other reading of σ (a reading, not the paper): softmax over the
  **batch dimension**, as FuseGPT's released KL does, with its scale (sum / B)::

      L = 1/B Σ_{b,s,d} p_T[b] (log p_T[b] − log p_S[b]),   p = softmax(H[:, s, d] / τ)

* :func:`batch_dim_kl` — FuseGPT's released loss:
  ``kl_div(log_softmax(S, dim=0), softmax(T, dim=0), reduction="batchmean")``,
  i.e. softmax over **dim 0** (the sequences of a batch), summed and divided by B.
* :func:`hidden_mse` — LLM-Streamline's MSE objective, mean over all elements.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


SIGMA_AXES = ("hidden", "batch")


def hidden_kl(teacher: Tensor, student: Tensor, temperature: float = 1.0, axis: str = "hidden") -> Tensor:
    """KL(softmax(teacher/τ) ‖ softmax(student/τ)) in fp32 (Eq. 6).

    ``axis="hidden"``: σ over the last (hidden) dim, mean over the B·S tokens;
    ``axis="batch"``: σ over dim 0 (the batch), summed and divided by B (FuseGPT's ``batchmean``).
    """
    if teacher.shape != student.shape:
        raise ValueError(f"teacher {tuple(teacher.shape)} and student {tuple(student.shape)} differ in shape")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if axis not in SIGMA_AXES:
        raise ValueError(f"sigma_axis: value {axis!r} is not allowed; allowed: {', '.join(SIGMA_AXES)}")
    dim = -1 if axis == "hidden" else 0
    log_p = F.log_softmax(teacher.float() / temperature, dim=dim)
    log_q = F.log_softmax(student.float() / temperature, dim=dim)
    kl = log_p.exp() * (log_p - log_q)
    if axis == "hidden":
        return kl.sum(dim=-1).mean()
    return kl.sum() / teacher.shape[0]


def sigma_entropy(teacher: Tensor, temperature: float = 1.0, axis: str = "hidden") -> Tensor:
    """Entropy of σ(teacher/τ) with the scale of :func:`hidden_kl`, so that KL + H = the cross-entropy
    ``−Σ p_T log p_S`` the paper's Fig. 12 plots (hidden: mean over tokens; batch: sum / B)."""
    if axis not in SIGMA_AXES:
        raise ValueError(f"sigma_axis: value {axis!r} is not allowed; allowed: {', '.join(SIGMA_AXES)}")
    dim = -1 if axis == "hidden" else 0
    log_p = F.log_softmax(teacher.float() / temperature, dim=dim)
    h = -(log_p.exp() * log_p)
    return h.sum(dim=-1).mean() if axis == "hidden" else h.sum() / teacher.shape[0]


def batch_dim_kl(student: Tensor, teacher: Tensor) -> Tensor:
    """FuseGPT: ``F.kl_div(log_softmax(S, 0), softmax(T, 0), reduction='batchmean')`` in fp32."""
    return F.kl_div(F.log_softmax(student.float(), dim=0), F.softmax(teacher.float(), dim=0), reduction="batchmean")


def hidden_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all elements, in fp32."""
    return F.mse_loss(prediction.float(), target.float())


def lm_loss(logits: Tensor, input_ids: Tensor) -> Tensor:
    """Next-token cross-entropy, mean over the B·(S−1) shifted positions."""
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1))


