"""Calibration statistics for the Taylor salience: the loss gradient and the Fisher diagonal.

``g = ∂L/∂W`` with ``L`` the mean next-token cross-entropy over all calibration windows
(``model(x, labels=x).loss``; the released code runs all windows as one batch — here in
chunks of ``batch_size`` windows, each chunk's gradient weighted by its share of the
windows, which is the same mean because every window has the same length).

``H = (1/N) Σ_j (∂L_j/∂W)²``, one backward per window ``j`` (the released code's
``acc_grad``).  Both are returned in fp32, for the given parameters only.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch


@contextlib.contextmanager
def gradients_for(model, params: Sequence[torch.nn.Parameter]) -> Iterator[None]:
    """Eval mode, grad enabled, ``requires_grad`` on ``params`` only; everything restored afterwards."""
    all_params = list(model.parameters())
    flags = [p.requires_grad for p in all_params]
    was_training = model.training
    model.eval()
    try:
        for p in all_params:
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            yield
    finally:
        for p, f in zip(all_params, flags):
            p.requires_grad_(f)
        model.train(was_training)


def _loss(model, x: torch.Tensor) -> torch.Tensor:
    return model(input_ids=x, attention_mask=torch.ones_like(x), labels=x, use_cache=False).loss


def loss_gradient(model, calib_ids: torch.Tensor, params: Sequence[torch.nn.Parameter],
                  batch_size: int | None = None) -> list[torch.Tensor]:
    """``∂L/∂p`` (fp32) of the mean LM loss over the windows ``calib_ids`` (W, S)."""
    device = params[0].device
    n = calib_ids.shape[0]
    step = n if batch_size is None else int(batch_size)
    acc = [torch.zeros(p.shape, dtype=torch.float32, device=device) for p in params]
    with gradients_for(model, params):
        for i in range(0, n, step):
            x = calib_ids[i : i + step].to(device)
            grads = torch.autograd.grad(_loss(model, x), params)
            for a, g in zip(acc, grads):
                a.add_(g.float(), alpha=x.shape[0] / n)
    return acc


def fisher_diagonal(model, calib_ids: torch.Tensor, params: Sequence[torch.nn.Parameter]) -> list[torch.Tensor]:
    """``(1/N) Σ_j (∂L_j/∂p)²`` (fp32), one backward per window."""
    device = params[0].device
    n = calib_ids.shape[0]
    acc = [torch.zeros(p.shape, dtype=torch.float32, device=device) for p in params]
    with gradients_for(model, params):
        for j in range(n):
            x = calib_ids[j : j + 1].to(device)
            grads = torch.autograd.grad(_loss(model, x), params)
            for a, g in zip(acc, grads):
                a.add_(g.float().square(), alpha=1.0 / n)
    return acc
