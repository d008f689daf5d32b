"""FuseGPT with its group-local post-training (docs/methods/fusegpt_train.md).

``n_remove`` iterations on the current stack, each:

1. Macro Influence of every layer on the first ``mi_chunks`` training chunks
   (:func:`layerpuzzle.methods.fusegpt.macro_influence`); f = the lowest MI.
2. Group = the ``group_size`` (8) consecutive layers around f
   (:func:`~layerpuzzle.methods.fusegpt.group_bounds`); its input ``x`` (the
   current stack's layers below the group) and its output before fusion (the
   teacher ``y``) for every training chunk.
3. f is fused into the other 7 layers (:func:`~layerpuzzle.methods.fusegpt.fuse_group`:
   ``W_eff = W_t + B·A + Σ_k (P_k Q_k) ⊙ W_f,k``) and deleted.
4. Group-local training: LoRA factors and RMSNorm weights of the 7 layers at
   ``lr`` (9.65e-6, hard-coded in the code), the coefficient factors at
   ``coef_lr`` (1e-3); Adam betas (0.9, 0.95), eps 1e-8, no weight decay;
   CosineAnnealingLR over all steps of the iteration; loss
   ``kl_div(log_softmax(S, dim=0), softmax(T, dim=0), 'batchmean')`` between the
   group's output and ``y`` — softmax over **dim 0** (the batch), as the code does
   (:func:`.losses.batch_dim_kl`).

FuseLinears stay unfolded across iterations (a layer that is in two groups keeps
training its LoRA and earlier coefficients, as in the code) and are folded into
plain Linears at the end (:func:`~layerpuzzle.methods.fusegpt.fold_fused`);
forwards without gradients use a temporary fold (:func:`folded_view`).

Resume: each iteration is a phase ``iterNN``; its removed layer is saved as a
``plan`` in the store, so a rerun replays finished iterations (fuse + load the
trained parameters) without recomputing Macro Influence or training, and resumes
the interrupted iteration inside it: the group's input and teacher are recomputed
from the replayed stack, the fusion is rebuilt (same seed), and its last step
checkpoint restores parameters, optimiser, scheduler and RNG (tested: the rerun
executes only the remaining steps, bit-identical to an uninterrupted run).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..engine.runner import LayerwiseRunner
from ..methods.fusegpt import CoefInit, FuseLinear, fold_fused, fuse_group, group_bounds, macro_influence
from ..models import architecture as arch
from ..methods.fusegpt.fuse_linear import BIAS_FUSIONS
from ..methods.fusegpt.macro_influence import check_precision
from .data import BATCH_ORDERS, BatchOrder, FixedBatches, data_use
from .hierarchical import DistillResult
from .losses import batch_dim_kl
from .t_layer import TrainingBudget
from .trainer import Phase, ResumeStore, StopHook, run_phase


@dataclass(frozen=True)
class FuseGPTTrainSettings:
    epochs: int = 2
    steps: int = 4              # optimiser steps per epoch (code: nsamples / 8)
    batch_size: int = 2
    lr: float = 9.65e-6         # LoRA factors and RMSNorm weights
    coef_lr: float = 1e-3       # coefficient factors P, Q (and bias coefficients)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    rank: int = 128             # rank of the coefficient matrices P·Q (--lora-rank)
    lora_rank: int = 128        # rank of the LoRA delta B·A (hard-coded 128 in the code)
    coef_init: str = "zeros"
    group_size: int = 8
    mi_chunks: int = 2
    seed: int = 10
    checkpoint_every: int = 8
    # released-code switches (defaults = the described behaviour; docs/methods/fusegpt_train.md)
    mi_precision: str = "exact"     # exact | bfloat16 (the released bf16 Macro-Influence scores)
    bias_fusion: str = "sum"        # sum | released (one coefficient, the last fused layer's own bias)
    batch_order: str = "shuffled"   # shuffled (BatchOrder) | fixed (the same consecutive batches every epoch)

    def __post_init__(self):
        check_precision(self.mi_precision)
        if self.bias_fusion not in BIAS_FUSIONS:
            raise ValueError(f"FuseGPT key `bias_fusion`: value {self.bias_fusion!r} is not allowed; "
                             f"allowed: {', '.join(BIAS_FUSIONS)}")
        if self.batch_order not in BATCH_ORDERS:
            raise ValueError(f"FuseGPT key `batch_order`: value {self.batch_order!r} is not allowed; "
                             f"allowed: {', '.join(BATCH_ORDERS)}")


@contextmanager
def folded_view(model):
    """Within the block every FuseLinear is replaced by its plain-Linear fold (same forward, computed once).

    For forwards without gradients (Macro Influence, group inputs, teachers): a FuseLinear recomputes
    ``W_t + B·A + Σ_k (P_k Q_k) ⊙ W_f,k`` on every call, which costs more than the layer itself at rank 128.
    The FuseLinears (and their trainable factors) are put back afterwards.
    """
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, FuseLinear)]
    for name, m in found:
        parent, attr = name.rsplit(".", 1)
        setattr(model.get_submodule(parent), attr, m.to_linear())
    try:
        yield model
    finally:
        for name, m in found:
            parent, attr = name.rsplit(".", 1)
            setattr(model.get_submodule(parent), attr, m)


@torch.no_grad()
def run_layers(runner: LayerwiseRunner, x: Tensor, start: int, stop: int, batch_size: int) -> Tensor:
    """Push ``x`` (N, S, D), the input of layer ``start``, through layers ``start..stop-1`` in batches.

    ``x`` and the result stay on ``x``'s device (the CPU in training: the activations of every chunk do not
    fit on a GPU at the paper's budget, as in the released code); each batch visits the runner's device.
    """
    out = []
    for i in range(0, x.shape[0], batch_size):
        h = x[i: i + batch_size].to(runner.device)
        for t in range(start, stop):
            h = runner.apply_layer(runner.model.model.layers[t], h, t)
        out.append(h.to(x.device))
    return torch.cat(out) if out else x


def group_parameters(model, start: int, stop: int) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """(LoRA + RMSNorm weights, coefficient factors) of layers ``start..stop-1``, by state-dict name.

    Everything else (base weights W_t, fused weights, other layers) is frozen.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    lora, coef = {}, {}
    for t in range(start, stop):
        layer = arch.layers(model)[t]
        for name, module in layer.named_modules():
            prefix = f"model.layers.{t}.{name}." if name else f"model.layers.{t}."
            if isinstance(module, FuseLinear):
                lora.update({prefix + "lora_A": module.lora_A, prefix + "lora_B": module.lora_B})
                if module.bias_fusion == "released" and module.bias is not None:  # released: b_t trained, one c
                    lora[prefix + "bias"] = module.bias
                    coef[prefix + "coef_b_last"] = module.coef_b_last
                for k in range(module.n_fused):
                    coef.update({f"{prefix}coef_P.{k}": module.coef_P[k], f"{prefix}coef_Q.{k}": module.coef_Q[k]})
                    if k < len(module.coef_b):  # one per fused layer; none under bias_fusion released
                        coef[f"{prefix}coef_b.{k}"] = module.coef_b[k]
            elif name.endswith("norm") and getattr(module, "weight", None) is not None:
                lora[prefix + "weight"] = module.weight
    for p in [*lora.values(), *coef.values()]:
        p.requires_grad_(True)
    return lora, coef


def fusegpt_train(model, chunks: Tensor, n_remove: int, settings: FuseGPTTrainSettings, store: ResumeStore, *,
                  stop: StopHook | None = None, progress: bool = True) -> tuple[DistillResult, list[list[int]]]:
    """Remove ``n_remove`` layers of ``model`` in place (fuse + train); return the result and the layer groups."""
    n0 = arch.num_layers(model)
    if not 0 < n_remove < n0:
        raise ValueError(f"cannot remove {n_remove} of {n0} layers")
    model.eval()
    device = next(model.parameters()).device
    bs = settings.batch_size
    runner = LayerwiseRunner(model, chunks[:1], batch_size=1, device=device)
    mi_runner = LayerwiseRunner(model, chunks[: settings.mi_chunks], batch_size=bs, device=device)
    with torch.no_grad():
        emb = torch.cat([model.model.embed_tokens(chunks[i: i + bs].to(device)).cpu()
                         for i in range(0, len(chunks), bs)])  # activations live on the CPU, batches visit the device
    order = (BatchOrder(chunks.shape[0], bs, settings.seed) if settings.batch_order == "shuffled"
             else FixedBatches(chunks.shape[0], bs))
    total = settings.epochs * settings.steps
    init = CoefInit(kind=settings.coef_init)
    original = list(range(n0))
    use = data_use(order, total, phases=n_remove, what="iteration")
    phases, iterations = [], []
    for it in range(n_remove):
        name = f"iter{it:02d}"
        plan = store.load(name, "plan")
        if plan is None:
            with folded_view(model):
                mi = macro_influence(mi_runner, precision=settings.mi_precision)
            plan = {"removed": mi.least_important(), "macro_influence": [float(v) for v in mi.scores]}
            store.save(name, plan, "plan")
        f = int(plan["removed"])
        start, stop_ = group_bounds(arch.num_layers(model), f, settings.group_size)
        x = y = None
        if store.load(name, "done") is None:
            with folded_view(model):
                x = run_layers(runner, emb, 0, start, bs)
                y = run_layers(runner, x, start, stop_, bs)
        group = fuse_group(model, f, rank=settings.rank, lora_rank=settings.lora_rank, init=init,
                           seed=settings.seed + it, group_size=settings.group_size,
                           bias_fusion=settings.bias_fusion)
        lora, coef = group_parameters(model, group.start, group.stop)
        optimizer = torch.optim.Adam([{"params": list(lora.values()), "lr": settings.lr},
                                      {"params": list(coef.values()), "lr": settings.coef_lr}],
                                     betas=(settings.beta1, settings.beta2), eps=settings.eps, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)

        def step_loss(step: int, x=x, y=y, group=group) -> Tensor:
            idx = order.indices(step)
            h = x[idx].to(device)
            for t in range(group.start, group.stop):
                h = runner.apply_layer(arch.layers(model)[t], h, t)
            return batch_dim_kl(h, y[idx].to(device))

        phase = Phase(name, {**lora, **coef}, optimizer, scheduler, total, step_loss, position=order.position)
        phases.append(run_phase(phase, store, checkpoint_every=settings.checkpoint_every, stop=stop,
                                progress=progress))
        iterations.append({"iteration": it, "removed_current": f, "removed_original": original[f],
                           "group_original": [original[t] for t in range(start, stop_) if t != f],
                           "macro_influence": plan["macro_influence"]})
        original.pop(f)
        del x, y
    for p in model.parameters():
        p.requires_grad_(False)
    fold_fused(model)
    layers_per_iteration = min(settings.group_size, n0) - 1
    budget = TrainingBudget(n_remove, layers_per_iteration, settings.epochs, settings.steps, bs, chunks.shape[1])
    result = DistillResult("FuseGPT", phases, budget, [], {"iterations": iterations, "data_use": use,
                                                          "removed_original": [i["removed_original"] for i in iterations]})
    return result, [[o] for o in original]
