"""Full-parameter causal-LM post-training of any checkpoint (LaCo, App. C; Fig. 3, Tables 6, 21, 24).

LaCo post-trains its pruned Llama2-7B on ~1 B tokens with every parameter trainable and the
next-token loss

    L(θ) = −1/(B·(S−1)) · Σ_b Σ_{t<S} log p_θ(x_{b,t+1} | x_{b,≤t})

(:func:`layerpuzzle.distill.losses.lm_loss`), optimised with AdamW (Loshchilov & Hutter): per
parameter, with gradient g_t after clipping the global norm to ``grad_clip``,

    m_t = β1·m_{t−1} + (1−β1)·g_t,   v_t = β2·v_{t−1} + (1−β2)·g_t²,
    θ_t = θ_{t−1}·(1 − η_t·λ) − η_t · (m_t/(1−β1^t)) / (√(v_t/(1−β2^t)) + ε)

with LaCo's App. C values lr 2e-4, β = (0.9, 0.95), λ = 0.1, clip 1.0 and a cosine schedule
η_t = lr · f(t) (:func:`layerpuzzle.distill.trainer.cosine_with_warmup`; LaCo does not state a warmup,
default none).  One phase of the project's resumable trainer (:func:`.trainer.run_phase`): a killed
job resumes bit for bit.  A bf16/fp16 model trains on fp32 master weights
(:func:`.precision.fp32_trainable`) and is cast back once at the end.

The batch of step s is ``BatchOrder(N, batch_size, seed).indices(s)`` over the N training chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from ..models import architecture as arch
from .data import BatchOrder, data_use
from .hierarchical import DistillResult
from .losses import lm_loss
from .precision import fp32_trainable
from .t_layer import TrainingBudget
from .trainer import Phase, ResumeStore, StopHook, cosine_with_warmup, run_phase

METHOD = "LM post-training"
PHASE = "lm_posttrain"


@dataclass(frozen=True)
class LMPosttrainSettings:
    """One post-training run. Defaults: LaCo App. C (lr, betas, weight decay, clip, cosine; no warmup stated)."""

    lr: float = 2e-4
    steps: int = 30
    batch_size: int = 8
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.1
    betas: Sequence[float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    seed: int = 10
    checkpoint_every: int = 10


def check_settings(s: LMPosttrainSettings) -> None:
    """Reject settings the optimiser cannot take, naming the setting, the value and what is allowed."""
    checks = [
        ("lr", s.lr, s.lr > 0, "a number > 0"),
        ("steps", s.steps, isinstance(s.steps, int) and s.steps >= 1, "an integer >= 1"),
        ("batch_size", s.batch_size, isinstance(s.batch_size, int) and s.batch_size >= 1, "an integer >= 1"),
        ("warmup_steps", s.warmup_steps, 0 <= s.warmup_steps < s.steps, f"an integer in [0, steps={s.steps})"),
        ("min_lr_ratio", s.min_lr_ratio, 0 <= s.min_lr_ratio <= 1, "a number in [0, 1]"),
        ("weight_decay", s.weight_decay, s.weight_decay >= 0, "a number >= 0"),
        ("betas", list(s.betas), len(s.betas) == 2 and all(0 <= b < 1 for b in s.betas), "two numbers in [0, 1)"),
        ("grad_clip", s.grad_clip, s.grad_clip is None or s.grad_clip > 0, "null or a number > 0"),
    ]
    for name, value, ok, allowed in checks:
        if not ok:
            raise ValueError(f"LM post-training setting `{name}`: value {value!r} is not allowed; allowed: {allowed}")


def trained_modules(model: nn.Module) -> list[nn.Module]:
    """The modules that hold parameters and return tensors: embeddings, every decoder layer, final norm, LM head.

    (:func:`.precision.fp32_trainable` casts each one's inputs and outputs; the model's own forward, which
    returns a ``ModelOutput``, is left alone.)"""
    mods = [model.get_input_embeddings(), *arch.layers(model), arch.final_norm(model)]
    head = model.get_output_embeddings()
    if head is not None and head is not mods[0]:
        mods.append(head)
    return mods


def lm_posttrain(model: nn.Module, chunks: Tensor, settings: LMPosttrainSettings, store: ResumeStore, *,
                 stop: StopHook | None = None, progress: bool = True) -> DistillResult:
    """Train every parameter of ``model`` (in place) on next-token prediction over ``chunks`` [N, S].

    Returns the run's :class:`DistillResult` (one phase; budget = steps × batch × S tokens seen)."""
    check_settings(settings)
    if chunks.ndim != 2 or chunks.shape[1] < 2:
        raise ValueError(f"training chunks must be [N, S >= 2] token ids, got shape {tuple(chunks.shape)}")
    device = next(model.parameters()).device
    params = dict(model.named_parameters())  # tied weights appear once
    for p in params.values():
        p.requires_grad_(True)
    order = BatchOrder(int(chunks.shape[0]), settings.batch_size, settings.seed)

    def step_loss(step: int) -> Tensor:
        ids = chunks[order.indices(step)].to(device)
        return lm_loss(model(input_ids=ids, use_cache=False).logits, ids)

    with fp32_trainable(model, trained_modules(model)):
        # the optimiser is built inside: its states are fp32 like the master weights
        optimizer = torch.optim.AdamW(params.values(), lr=settings.lr, betas=tuple(float(b) for b in settings.betas),
                                      eps=settings.eps, weight_decay=settings.weight_decay)
        scheduler = cosine_with_warmup(optimizer, settings.steps, settings.warmup_steps, settings.min_lr_ratio)
        phase = Phase(PHASE, params, optimizer, scheduler, settings.steps, step_loss, position=order.position,
                      grad_clip=settings.grad_clip)
        model.train()
        try:
            result = run_phase(phase, store, checkpoint_every=settings.checkpoint_every, stop=stop,
                               progress=progress)
        finally:
            model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    seq = int(chunks.shape[1])
    budget = TrainingBudget(1, arch.num_layers(model), 1, settings.steps, settings.batch_size, seq)
    details = {"tokens_seen": settings.steps * settings.batch_size * seq,
               "trainable_parameters": sum(p.numel() for p in params.values()),
               "data_use": data_use(order, settings.steps)}
    return DistillResult(METHOD, [result], budget, list(range(arch.num_layers(model))), details)
