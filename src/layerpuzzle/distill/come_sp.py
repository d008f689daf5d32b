"""CoMe-sp: single-phase hierarchical distillation of all merged layers at once (Alg. 3; docs/methods/come_sp.md).

One AdamW optimiser (weight decay 1e-2) over all merged layers ``θ_{b_i}``; per
batch one student forward gives every ``H_S^{b_i}`` and the loss is
``Σ_i KL(σ(H_T^{a_i}) ‖ σ(H_S^{b_i}))``; cosine decay from the peak LR (paper:
1e-5, 1 epoch × 10,000 steps × batch 32 × 512 tokens; warmup unknown → none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


@dataclass(frozen=True)
class SPSettings:
    lr: float = 1e-5
    weight_decay: float = 1e-2
    epochs: int = 1
    steps: int = 24          # optimiser steps per epoch
    batch_size: int = 2
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    temperature: float = 1.0  # τ of σ = softmax(H / τ) in Eq. 6 (unknown in the paper)
    sigma_axis: str = "hidden"  # the axis of σ in Eq. 6: hidden (default) or batch (FuseGPT's reading)
    seed: int = 10           # batch order
    checkpoint_every: int = 10


def distill_sp(student, chunks: Tensor, teacher: Teacher, pairs: Sequence[tuple[int, int]], settings: SPSettings,
               store: ResumeStore, *, stop: StopHook | None = None, progress: bool = True) -> DistillResult:
    """Train the merged layers of ``student`` in place; ``pairs`` = P = [(b_i, a_i)] (hierarchical.distillation_pairs)."""
    if not pairs:
        raise ValueError("CoMe-sp needs at least one merged layer in the layer map")
    if settings.sigma_axis not in SIGMA_AXES:
        raise ValueError(f"sigma_axis: value {settings.sigma_axis!r} is not allowed; allowed: {', '.join(SIGMA_AXES)}")
    student.eval()
    device = next(student.parameters()).device
    runner = LayerwiseRunner(student, chunks[:1], batch_size=1, device=device)
    students = [b for b, _ in pairs]
    params = train_only(student, students)
    order = BatchOrder(chunks.shape[0], settings.batch_size, settings.seed)
    total = settings.epochs * settings.steps
    optimizer = torch.optim.AdamW(params.values(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = cosine_with_warmup(optimizer, total, settings.warmup_steps, settings.min_lr_ratio)

    def step_loss(step: int) -> Tensor:
        idx = order.indices(step)
        target = teacher.batch(idx)
        out = student_outputs(runner, chunks[idx], students, grad_from=min(students))
        return sum(hidden_kl(target[a].to(device), out[b], settings.temperature, settings.sigma_axis) for b, a in pairs)

    phase = Phase("come_sp", params, optimizer, scheduler, total, step_loss, position=order.position)
    with fp32_trainable(student, [student.model.layers[b] for b in students]):
        result = run_phase(phase, store, checkpoint_every=settings.checkpoint_every, stop=stop, progress=progress)
    budget = TrainingBudget(1, len(pairs), settings.epochs, settings.steps, settings.batch_size, chunks.shape[1])
    return DistillResult("CoMe-sp", [result], budget, students, {"pairs": [list(p) for p in pairs],
                                                                 "data_use": data_use(order, total)})
