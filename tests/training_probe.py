"""Observe what an optimiser really does during training, from outside the trainers.

:class:`OptimizerProbe` registers torch's global optimiser step hooks
(``torch.optim.optimizer.register_optimizer_step_{pre,post}_hook``), so it sees every
``optimizer.step()`` of every optimiser built inside the ``with`` block, whatever the
trainer does.  Per step it records the optimiser, and per parameter group the learning
rate, weight decay, the parameters (by identity), their dtypes and their gradients'
dtypes; with ``keep=True`` also each parameter before and after the step and its
gradient, so a test can replay the update with an independent optimiser implementation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook


@dataclass
class GroupRecord:
    lr: float
    weight_decay: float
    params: list[int]                       # id() of each parameter
    dtypes: list[torch.dtype]
    grad_dtypes: list[torch.dtype | None]
    before: list[torch.Tensor] = field(default_factory=list)
    grads: list[torch.Tensor] = field(default_factory=list)
    after: list[torch.Tensor] = field(default_factory=list)


@dataclass
class StepRecord:
    optimizer: int                          # id() of the optimiser
    groups: list[GroupRecord]


class OptimizerProbe:
    def __init__(self, keep: bool = False):
        self.keep, self.steps, self._handles = keep, [], []

    def __enter__(self) -> "OptimizerProbe":
        self._handles = [register_optimizer_step_pre_hook(self._pre), register_optimizer_step_post_hook(self._post)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()

    def _pre(self, opt, args, kwargs) -> None:
        groups = []
        for g in opt.param_groups:
            ps = list(g["params"])
            rec = GroupRecord(float(g["lr"]), float(g.get("weight_decay", 0.0)), [id(p) for p in ps],
                              [p.dtype for p in ps], [None if p.grad is None else p.grad.dtype for p in ps])
            if self.keep:
                rec.before = [p.detach().clone() for p in ps]
                rec.grads = [None if p.grad is None else p.grad.detach().clone() for p in ps]
            groups.append(rec)
        self.steps.append(StepRecord(id(opt), groups))

    def _post(self, opt, args, kwargs) -> None:
        if self.keep:
            for rec, g in zip(self.steps[-1].groups, opt.param_groups):
                rec.after = [p.detach().clone() for p in g["params"]]

    def optimizers(self) -> list[int]:
        """The optimisers in the order of their first step."""
        return list(dict.fromkeys(s.optimizer for s in self.steps))

    def lrs(self, optimizer: int, group: int = 0) -> list[float]:
        """The learning rate of ``group`` of ``optimizer`` at each of its steps."""
        return [s.groups[group].lr for s in self.steps if s.optimizer == optimizer]


def param_names(model: torch.nn.Module) -> dict[int, str]:
    """id() → state-dict name of every parameter of ``model``."""
    return {id(p): n for n, p in model.named_parameters()}


def adamw_replay(records: list[GroupRecord], lrs: list[float], weight_decay: float, betas=(0.9, 0.999),
                 eps=1e-8) -> list[torch.Tensor]:
    """The parameters after AdamW steps on the recorded gradients with the **given** learning rates and weight
    decay (not the recorded ones), reimplemented (Loshchilov & Hutter, Alg. 2; torch's AdamW convention):

    θ ← θ(1 − η λ);  m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;
    θ ← θ − η (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)   — in float64, from the first step's ``before``.
    """
    b1, b2 = betas
    theta = [p.double().clone() for p in records[0].before]
    m = [torch.zeros_like(t) for t in theta]
    v = [torch.zeros_like(t) for t in theta]
    assert len(lrs) == len(records)
    for t, (rec, lr) in enumerate(zip(records, lrs), 1):
        for i, g in enumerate(rec.grads):
            g = g.double()
            theta[i] = theta[i] * (1 - lr * weight_decay)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            theta[i] = theta[i] - lr * (m[i] / (1 - b1 ** t)) / ((v[i] / (1 - b2 ** t)).sqrt() + eps)
    return theta
