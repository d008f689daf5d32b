"""CoMe's hierarchical distillation, shared by CoMe-sp and CoMe-mp (paper Eq. 6, Alg. 3–4; docs/methods/come_sp.md).

The layer map P pairs every **merged** student layer ``b_i`` (one that stands for
more than one original layer) with ``a_i``, the last original layer of its
group; the student's output at ``b_i`` is distilled towards the dense teacher's
output at ``a_i``::

    L = Σ_i KL(σ(H_T^{a_i}) ‖ σ(H_S^{b_i}))          (losses.hidden_kl)

Only the merged layers ``θ_{b_i}`` are trained; embeddings, unmerged layers,
final norm and LM head are frozen (and stay bit-identical).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..engine.runner import LayerwiseRunner
from ..models import architecture as arch
from .t_layer import TrainingBudget
from .trainer import PhaseResult


def distillation_pairs(layer_map: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """P = ``[(b_i, a_i)]`` of the merged student layers, sorted by student index (shallow → deep)."""
    pairs = [(int(e["student"]), int(e["teacher_last"])) for e in layer_map if len(e["teacher_layers"]) > 1]
    return sorted(pairs)


def layer_parameters(model, index: int) -> dict[str, nn.Parameter]:
    """The parameters of decoder layer ``index``, named as in the model's state dict."""
    return {f"model.layers.{index}.{n}": p for n, p in arch.layers(model)[index].named_parameters()}


def train_only(model, layer_indices: Sequence[int]) -> dict[str, nn.Parameter]:
    """Freeze every parameter except those of ``layer_indices``; return the trainable ones by name."""
    for p in model.parameters():
        p.requires_grad_(False)
    params: dict[str, nn.Parameter] = {}
    for b in layer_indices:
        for n, p in layer_parameters(model, b).items():
            p.requires_grad_(True)
            params[n] = p
    return params


def student_outputs(runner: LayerwiseRunner, ids: Tensor, capture: Sequence[int], grad_from: int) -> dict[int, Tensor]:
    """Outputs of the student's layers ``capture`` for one batch; layers below ``grad_from`` run without autograd."""
    model = runner.model
    want = set(int(b) for b in capture)
    with torch.no_grad():
        h = model.model.embed_tokens(ids.to(runner.device))
    out = {}
    for i in range(max(want) + 1):
        layer = model.model.layers[i]
        if i < grad_from:
            with torch.no_grad():
                h = runner.apply_layer(layer, h, i)
        else:
            h = runner.apply_layer(layer, h, i)
        if i in want:
            out[i] = h
    return out


@dataclass
class DistillResult:
    """What a post-training run did: its phases (in training order) and its Table 7 budget."""

    method: str
    phases: list[PhaseResult]
    budget: TrainingBudget
    trained_layers: list[int]
    details: dict[str, Any] = field(default_factory=dict)

    def loss_curve(self) -> list[tuple[str, float]]:
        """(phase, loss) for every optimiser step, the phases concatenated in training order (Fig. 12)."""
        return [(p.name, loss) for p in self.phases for loss in p.losses]

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "budget": self.budget.as_dict(),
            "trained_layers": self.trained_layers,
            "phases": [
                {"name": p.name, "steps": len(p.losses), "first_loss": p.losses[0] if p.losses else None,
                 "last_loss": p.losses[-1] if p.losses else None, "best_step": p.best_step,
                 "resumed_from": p.resumed_from, "steps_run": p.steps_run, "skipped": p.skipped,
                 "params_sha256": p.params_sha256, "val_losses": p.val_losses}
                for p in self.phases
            ],
            **self.details,
        }
