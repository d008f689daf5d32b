"""CoMe-mp: multi-phase hierarchical distillation, one merged layer at a time (Alg. 4; docs/methods/come_mp.md).

For k = 1..|P| with P sorted by student index (shallow → deep; the paper's LR
lists run shallow → deep, so this order is inferred): a fresh AdamW (weight
decay 1e-2) over ``θ_{b_k}`` with its own cosine schedule and peak LR ``η_k``;
the student forwards through the already-trained layers below ``b_k`` and the
loss is ``KL(σ(H_T^{a_k}) ‖ σ(H_S^{b_k}))``.

Paper LR lists: LLaMA-2-7B 5e-4, 2.5e-4, 1e-4, 7.5e-5, 5e-5, 2.5e-5, 1e-5
(|P| = 7); Qwen3-4B 5e-4, 2.5e-4, 5e-5, 2.5e-5, 1e-5, 7.5e-6 (|P| = 6).
When the configured list's length differs from |P|, :func:`fit_lrs` resamples it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..engine.runner import LayerwiseRunner
from .data import BatchOrder, data_use
from .hierarchical import DistillResult, student_outputs, train_only
from .losses import SIGMA_AXES, hidden_kl
from .precision import fp32_trainable
from .t_layer import TrainingBudget
from .teacher_activations import Teacher
from .trainer import Phase, ResumeStore, StopHook, cosine_with_warmup, run_phase

PAPER_LRS = {
    "LLaMA-2-7B": (5e-4, 2.5e-4, 1e-4, 7.5e-5, 5e-5, 2.5e-5, 1e-5),
    "Qwen3-4B": (5e-4, 2.5e-4, 5e-5, 2.5e-5, 1e-5, 7.5e-6),
}


def fit_lrs(lrs: Sequence[float], n: int) -> list[float]:
    """The LR list resampled to ``n`` entries: unchanged when ``len(lrs) == n``, else log-linear
    interpolation over the relative depth ``k/(n−1)`` (first and last LR kept; n = 1 → the first)."""
    lrs = [float(x) for x in lrs]
    if not lrs or any(x <= 0 for x in lrs):
        raise ValueError(f"learning rates must be a non-empty list of positive numbers, got {lrs}")
    if n == len(lrs):
        return lrs
    if n == 1 or len(lrs) == 1:
        return [lrs[0]] * n
    pos = np.linspace(0.0, 1.0, len(lrs))
    out = [float(math.exp(np.interp(k / (n - 1), pos, np.log(lrs)))) for k in range(n)]
    out[0], out[-1] = lrs[0], lrs[-1]
    return out


@dataclass(frozen=True)
class MPSettings:
    lrs: tuple[float, ...] = PAPER_LRS["LLaMA-2-7B"]
    weight_decay: float = 1e-2
    epochs: int = 1
    steps: int = 8           # optimiser steps per epoch, per merged layer
    batch_size: int = 2
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    temperature: float = 1.0  # τ of σ = softmax(H / τ) in Eq. 6 (unknown in the paper)
    sigma_axis: str = "hidden"  # the axis of σ in Eq. 6: hidden (default) or batch (FuseGPT's reading)
    seed: int = 10
    checkpoint_every: int = 10


def distill_mp(student, chunks: Tensor, teacher: Teacher, pairs: Sequence[tuple[int, int]], settings: MPSettings,
               store: ResumeStore, *, stop: StopHook | None = None, progress: bool = True) -> DistillResult:
    """Train the merged layers of ``student`` one after the other, in place (shallow → deep)."""
    if not pairs:
        raise ValueError("CoMe-mp needs at least one merged layer in the layer map")
    pairs = sorted(pairs)
    if settings.sigma_axis not in SIGMA_AXES:
        raise ValueError(f"sigma_axis: value {settings.sigma_axis!r} is not allowed; allowed: {', '.join(SIGMA_AXES)}")
    student.eval()
    device = next(student.parameters()).device
    runner = LayerwiseRunner(student, chunks[:1], batch_size=1, device=device)
    order = BatchOrder(chunks.shape[0], settings.batch_size, settings.seed)
    total = settings.epochs * settings.steps
    lrs = fit_lrs(settings.lrs, len(pairs))
    use = data_use(order, total, phases=len(pairs), what="merged layer")
    results = []
    for (b, a), lr in zip(pairs, lrs):
        params = train_only(student, [b])
        optimizer = torch.optim.AdamW(params.values(), lr=lr, weight_decay=settings.weight_decay)
        scheduler = cosine_with_warmup(optimizer, total, settings.warmup_steps, settings.min_lr_ratio)

        def step_loss(step: int, b=b, a=a) -> Tensor:
            idx = order.indices(step)
            out = student_outputs(runner, chunks[idx], [b], grad_from=b)
            return hidden_kl(teacher.batch(idx, [a])[a].to(device), out[b], settings.temperature, settings.sigma_axis)

        phase = Phase(f"layer{b:03d}", params, optimizer, scheduler, total, step_loss, position=order.position)
        with fp32_trainable(student, [student.model.layers[b]]):
            results.append(run_phase(phase, store, checkpoint_every=settings.checkpoint_every, stop=stop,
                                     progress=progress))
    budget = TrainingBudget(len(pairs), 1, settings.epochs, settings.steps, settings.batch_size, chunks.shape[1])
    return DistillResult("CoMe-mp", results, budget, [b for b, _ in pairs],
                         {"pairs": [list(p) for p in pairs], "lrs": lrs, "data_use": use})
