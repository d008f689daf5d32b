"""LLM-Streamline: replace the most redundant window of layers by one trained layer (docs/methods/streamline.md).

To remove ``n`` layers, score every window of ``n+1`` consecutive layers
``[j, j+n]`` by its skip-block influence

    SBI_j = 1 − E_{x,t} cos(h[j]_t, h[j+n+1]_t)          (h[k] = input of layer k)

on ``sbi_chunks`` training chunks, take ``j* = argmin SBI`` (ties → the first),
and replace the window by **one** layer initialised from its first layer ``j*``.
``h[L]`` is the raw output of the last layer (no final norm; the released code
compares with the final-normed state there).

Training, ``loss="mse"`` (the released MSE variant's objective): the layer is trained
standalone to map the dense ``h[j*]`` to the dense ``h[j*+n+1]`` (MSE), AdamW
(lr 2e-4, weight decay 1e-3), gradient clipping 5, cosine schedule with linear
warmup (``warmup_ratio`` of the steps) down to ``min_lr``; the validation MSE on
held-out chunks is tracked every ``eval_every`` steps and the best state kept.
``loss="lm"`` (the released LLM-loss variant's objective): the layer is trained inside
the pruned model with the next-token loss, everything else frozen.

The defaults are the method as described (causal attention, best validation state,
AdamW's default betas). Switches reproduce what the released code does instead:

* ``attention="released"`` (MSE only): the released code calls the standalone layer
  with ``attention_mask=None`` under eager attention, i.e. **without a causal mask**
  (every token attends to every token, in training and validation);
* ``keep="last"``: the released code's "best state" is ``model.state_dict()``, which
  aliases the live parameters, so the state it reloads is the last one;
* ``betas``: AdamW betas (the released LLM-loss variant uses (0.9, 0.95));
* ``schedule="released"``: the released LR trajectory of the chosen loss, see
  :func:`released_lr_factor`; ``grad_clip=0``: no clipping (released LLM-loss variant);
* the released code scores and trains in fp32: the workflow's per-variant ``dtype``.

Not reproduced: gradient accumulation (each of our optimiser steps is one batch of
``batch_size`` chunks), the per-epoch-only validation, the LLM-loss variant's bf16
autocast and its ``"layers.{j}"`` substring match (which also unfreezes layers j0–j9).

Teacher states (the dense ``h[j*]`` and ``h[j*+n+1]`` of every chunk): ``teacher="stored"``
computes them once and keeps them in memory (``2 × tokens × hidden × 4`` bytes: 2 TB for
LLaMA-2-7B on the released ~61M tokens, the released code's own memory problem);
``teacher="streaming"`` recomputes them per batch from the dense model (``j*+n+1`` dense layer
forwards per step, no storage). Both give the same numbers.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..engine.block_influence import token_cosine
from ..engine.runner import LayerwiseRunner
from ..models import architecture as arch
from .data import BatchOrder, data_use, split_validation
from .hierarchical import DistillResult, layer_parameters, train_only
from .precision import fp32_trainable
from .losses import hidden_mse, lm_loss
from .t_layer import TrainingBudget
from .teacher_activations import EMBEDDING, StoredTeacher, StreamingTeacher, teacher_states
from .trainer import Phase, ResumeStore, StopHook, Validation, cosine_with_warmup, run_phase


@dataclass(frozen=True)
class StreamlineSettings:
    loss: Literal["mse", "lm"] = "mse"
    lr: float = 2e-4
    weight_decay: float = 1e-3
    min_lr: float = 5e-5
    warmup_ratio: float = 0.01
    grad_clip: float = 5.0
    epochs: int = 1
    steps: int = 32          # optimiser steps per epoch
    batch_size: int = 4
    val_chunks: int = 4
    eval_every: int = 8
    sbi_chunks: int = 8
    teacher: Literal["stored", "streaming"] = "stored"
    schedule: Literal["per_step", "released"] = "per_step"
    accumulation: int = 16   # the released code's gradient_accumulation_step (schedule "released" only)
    attention: Literal["causal", "released"] = "causal"  # released: no causal mask (MSE variant)
    keep: Literal["best", "last"] = "best"               # last: the released aliasing keeps the last state
    betas: tuple[float, float] = (0.9, 0.999)            # AdamW betas (released LLM-loss variant: 0.9, 0.95)
    seed: int = 10
    checkpoint_every: int = 10


@torch.no_grad()
def window_sbi(model, chunks: Tensor, n: int, batch_size: int = 2) -> Tensor:
    """SBI_j of every window ``[j, j+n]``, j = 0..L−n−1 (float64 vector of length L−n)."""
    L = arch.num_layers(model)
    if not 0 <= n < L:
        raise ValueError(f"cannot replace {n + 1} of {L} layers by one")
    runner = LayerwiseRunner(model, chunks, batch_size=batch_size, device=next(model.parameters()).device)
    cos_sum = torch.zeros(L - n, dtype=torch.float64)
    n_tokens = 0
    for ids in runner.batches():
        h = [model.model.embed_tokens(ids)]
        for i in range(L):
            h.append(runner.apply_layer(model.model.layers[i], h[-1], i))
        for j in range(L - n):
            cos_sum[j] += float(token_cosine(h[j], h[j + n + 1]).double().sum())
        n_tokens += ids.numel()
    return 1.0 - cos_sum / n_tokens


def replaced_window_groups(n_layers: int, start: int, n: int) -> list[list[int]]:
    """Layer groups of the pruned model: window ``[start, start+n]`` collapsed into one layer."""
    return ([[i] for i in range(start)] + [list(range(start, start + n + 1))]
            + [[i] for i in range(start + n + 1, n_layers)])


def replace_window(dense, start: int, n: int):
    """A deep copy of ``dense`` with layers ``start..start+n`` replaced by a copy of layer ``start``."""
    model = copy.deepcopy(dense)
    L = arch.num_layers(model)
    keep = [i for i in range(L) if not start < i <= start + n]
    types = getattr(model.config, "layer_types", None)
    arch.replace_layers(model, [model.model.layers[i] for i in keep],
                        [types[i] for i in keep] if types is not None else None)
    return model


def schedule_length(settings: StreamlineSettings) -> tuple[int, int]:
    """(cosine length T, warmup w) in optimiser steps.

    ``per_step``: T = epochs × steps, w = warmup_ratio × T — the cosine reaches min_lr at the end.
    ``released``: the released code builds the schedule for half the number of micro-batches
    (T = epochs × steps × accumulation / 2, w = warmup_ratio × T) but steps it once per optimiser step
    (every ``accumulation`` micro-batches), so training ends at 2/accumulation of the cosine (1/8 for 16)
    and the LR stays near its peak. Each of our optimiser steps is one batch (no gradient accumulation),
    so only the LR trajectory is the released one. This is the rounded summary; the ``released`` schedule
    itself is :func:`released_lr_factor` (float warmup, per loss).
    """
    total = settings.epochs * settings.steps
    if settings.schedule == "released":
        total = max(1, total * settings.accumulation // 2)
    elif settings.schedule != "per_step":
        raise ValueError(f"schedule must be 'per_step' or 'released', got {settings.schedule!r}")
    return total, round(settings.warmup_ratio * total)


def released_lr_factor(step: int, settings: StreamlineSettings) -> float:
    """LR factor (of ``lr``) of optimiser step ``step`` under the released schedule of ``settings.loss``.

    The released scheduler (``get_cosine_schedule_with_warmup`` of LLM-Streamline) is
    ``λ(s) = s/w`` for ``s < w``, else ``(m + max(0, ½(1 + cos(π·(s−w)/(T−w))))·(lr − m)) / lr``
    (``m = min_lr``, ``w`` a float, no clamp of the progress), built for ``M = epochs × steps ×
    accumulation`` micro-batches:

    * MSE variant: ``T = M/2``, ``w = warmup_ratio·M/2``, stepped once per optimiser step, so step
      ``k`` runs at ``λ(k)`` and training ends ``2/accumulation`` of the way down the cosine;
    * LLM-loss variant: ``T = M/2``, ``w = warmup_ratio·M``, stepped every micro-batch (the scheduler is
      not wrapped by ``accelerate``), so optimiser step ``k`` (after micro-batch ``kA + A − 1``) runs at
      ``λ(kA + A − 1)``: the LR reaches ``min_lr`` half-way and climbs back to ``lr`` by the end.
    """
    a = settings.accumulation
    micro = settings.epochs * settings.steps * a
    total = 0.5 * micro
    if settings.loss == "mse":
        s, warmup = step, settings.warmup_ratio * micro * 0.5
    else:
        s, warmup = step * a + a - 1, settings.warmup_ratio * micro
    if s < warmup:
        return s / max(1.0, warmup)
    progress = (s - warmup) / max(1.0, total - warmup)
    lam = max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return (settings.min_lr + lam * (settings.lr - settings.min_lr)) / settings.lr


def check_settings(settings: StreamlineSettings) -> None:
    """Clear errors for values the dataclass's types do not enforce."""
    allowed = {"loss": ("mse", "lm"), "teacher": ("stored", "streaming"), "schedule": ("per_step", "released"),
               "attention": ("causal", "released"), "keep": ("best", "last")}
    for key, values in allowed.items():
        if getattr(settings, key) not in values:
            raise ValueError(f"LLM-Streamline setting `{key}`: value {getattr(settings, key)!r} is not allowed; "
                             f"allowed: {', '.join(values)}")
    if settings.attention == "released" and settings.loss != "mse":
        raise ValueError("LLM-Streamline setting `attention`: value 'released' is only for loss 'mse' (the "
                         "released LLM-loss variant trains inside the pruned model, with the causal mask); "
                         "allowed with loss 'lm': causal")
    if len(settings.betas) != 2 or not all(0 <= b < 1 for b in settings.betas):
        raise ValueError(f"LLM-Streamline setting `betas`: value {list(settings.betas)!r} is not allowed; "
                         "allowed: two numbers in [0, 1)")


def streamline(dense, chunks: Tensor, n_remove: int, settings: StreamlineSettings, store: ResumeStore, *,
               stop: StopHook | None = None, progress: bool = True):
    """Return ``(pruned model, DistillResult)``; ``dense`` is left unchanged."""
    if n_remove < 1:
        raise ValueError(f"LLM-Streamline needs at least one layer to remove, got {n_remove}")
    check_settings(settings)
    dense.eval()
    L = arch.num_layers(dense)
    train_chunks, val_chunks = split_validation(chunks, settings.val_chunks)
    sbi = window_sbi(dense, train_chunks[: settings.sbi_chunks], n_remove, batch_size=settings.batch_size)
    j = int(torch.argmin(sbi))
    a_in, a_out = j - 1 if j > 0 else EMBEDDING, j + n_remove
    if settings.teacher == "streaming":
        teacher = StreamingTeacher(dense, chunks, [a_in, a_out])
    elif settings.teacher == "stored":
        teacher = StoredTeacher(teacher_states(dense, chunks, [a_in, a_out], batch_size=settings.batch_size,
                                               progress=progress))
    else:
        raise ValueError(f"teacher must be 'stored' or 'streaming', got {settings.teacher!r}")
    n_train = train_chunks.shape[0]

    model = replace_window(dense, j, n_remove)
    device = next(model.parameters()).device
    params = train_only(model, [j])
    layer = model.model.layers[j]
    runner = LayerwiseRunner(model, chunks[:1], batch_size=1, device=device)
    order = BatchOrder(n_train, settings.batch_size, settings.seed)

    def apply_new_layer(h: Tensor) -> Tensor:
        """The replacement layer on ``h``: causal as in the model, or without any mask (released)."""
        if settings.attention == "causal":
            return runner.apply_layer(layer, h, j)
        ctx = runner._context(h)
        out = layer(h, attention_mask=None, is_causal=False, position_ids=ctx["pos"],
                    position_embeddings=ctx["rope"], use_cache=False)
        return out[0] if isinstance(out, tuple) else out

    def batch_loss(idx: Tensor) -> Tensor:
        """MSE of the new layer against the dense output of the window, or the LM loss through the pruned model."""
        states = teacher.batch(idx)
        h = states[a_in].to(device)
        if settings.loss == "mse":
            return hidden_mse(apply_new_layer(h), states[a_out].to(device))
        for i in range(j, arch.num_layers(model)):
            h = runner.apply_layer(model.model.layers[i], h, i)
        return lm_loss(model.lm_head(arch.final_norm(model)(h)), chunks[idx].to(device))

    def step_loss(step: int) -> Tensor:
        return batch_loss(order.indices(step))

    val_idx = torch.arange(n_train, chunks.shape[0])

    def val_loss() -> float:
        losses = []
        for k in range(0, len(val_idx), settings.batch_size):
            idx = val_idx[k: k + settings.batch_size]
            losses.append(float(batch_loss(idx)) * len(idx))
        return sum(losses) / len(val_idx)

    total = settings.epochs * settings.steps
    optimizer = torch.optim.AdamW(params.values(), lr=settings.lr, weight_decay=settings.weight_decay,
                                  betas=tuple(float(b) for b in settings.betas))
    if settings.schedule == "released":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: released_lr_factor(k, settings))
    else:
        sched_total, sched_warmup = schedule_length(settings)
        scheduler = cosine_with_warmup(optimizer, sched_total, sched_warmup, settings.min_lr / settings.lr)
    validation = (Validation(val_loss, settings.eval_every, keep_best=settings.keep == "best")
                  if len(val_idx) else None)
    phase = Phase("streamline", params, optimizer, scheduler, total, step_loss, position=order.position,
                  grad_clip=settings.grad_clip, validation=validation)
    with fp32_trainable(model, [layer]):  # also takes the fp32 teacher states as inputs on a bf16 model
        result = run_phase(phase, store, checkpoint_every=settings.checkpoint_every, stop=stop, progress=progress)
    for p in model.parameters():
        p.requires_grad_(False)
    budget = TrainingBudget(1, 1, settings.epochs, settings.steps, settings.batch_size, chunks.shape[1])
    details = {"window": [j, j + n_remove], "sbi": [float(v) for v in sbi], "loss": settings.loss,
               "attention": settings.attention, "keep": settings.keep,
               "layer_groups": replaced_window_groups(L, j, n_remove),
               "trainable_parameters": sorted(layer_parameters(model, j)), "data_use": data_use(order, total)}
    return model, DistillResult("LLM-Streamline", [result], budget, [j], details)
