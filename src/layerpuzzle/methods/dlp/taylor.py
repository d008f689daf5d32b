"""Taylor+: first-order Taylor block importance (baselines.md §2; CoMe App. A).

    I_l = Σ_{W ∈ layer l} Σ_ij | Σ_b W_ij · ∂L_b/∂W_ij |        (accumulate = "signed_sum")
    I_l = Σ_b Σ_{W ∈ layer l} Σ_ij | W_ij · ∂L_b/∂W_ij |        (accumulate = "abs_per_batch")

``L_b`` is the mean next-token cross-entropy of calibration batch ``b``
(``model(x, labels=x).loss``); the weights are those of Mag+ (names containing
``"weight"``: projections and norm weights, no biases).

Which accumulation is the default: the paper writes ``Σ_W Σ_w |∂L/∂w · w|``
with ``L`` the calibration loss.  For equal-sized batches ``∂L/∂w`` is the mean
of the per-batch gradients, so the paper's formula *is* the signed sum above
(up to the constant 1/#batches, which does not change the order).  The
released codes agree: shortened-llm accumulates the signed products
``W·grad`` over batches and takes |·| at the end, and CoMe's reimplementation
never zeroes the gradient (the same sum, read once).  ``abs_per_batch`` (|·| of
every batch's product, then summed) is the other reading of the formula and
is offered as a switch; with a single batch the two coincide.

Products and sums are computed in fp32 whatever the model dtype (the released
code multiplies in the model dtype, then casts).
"""

from __future__ import annotations

import torch

from ...models import architecture as arch
from .magnitude import block_score, layer_weights, weight_score
from .removal import RemovalOrder, ranked_order

DISPLAY_NAME = "Taylor+"
ACCUMULATE = ("signed_sum", "abs_per_batch")


def taylor_scores(model, input_ids: torch.Tensor, *, batch_size: int = 1,
                  accumulate: str = "signed_sum") -> list[float]:
    """I_l for every decoder layer over the calibration windows ``input_ids`` (W, S)."""
    if accumulate not in ACCUMULATE:
        raise ValueError(f"accumulate={accumulate!r}; allowed: {', '.join(ACCUMULATE)}")
    device = next(model.parameters()).device
    per_layer = [[p for _, p in layer_weights(layer)] for layer in arch.layers(model)]
    params = [p for ps in per_layer for p in ps]
    acc = [torch.zeros(p.shape, dtype=torch.float32, device=device) for p in params]
    flags = [p.requires_grad for p in params]
    was_training = model.training
    model.eval()
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            for i in range(0, input_ids.shape[0], batch_size):
                x = input_ids[i : i + batch_size].to(device)
                loss = model(input_ids=x, labels=x, use_cache=False).loss
                grads = torch.autograd.grad(loss, params)
                for a, p, g in zip(acc, params, grads):
                    s = p.detach().float() * g.float()
                    a.add_(s if accumulate == "signed_sum" else s.abs())
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
        model.train(was_training)
    scores, k = [], 0
    for ps in per_layer:
        scores.append(block_score([weight_score(a) for a in acc[k : k + len(ps)]]))
        k += len(ps)
    return scores


def taylor_order(model, input_ids: torch.Tensor, *, batch_size: int = 1, accumulate: str = "signed_sum",
                 plus_heuristic: bool = True) -> RemovalOrder:
    """Taylor+ removal order (ascending I_l; "+" moves layers 0-3 and the last two to the end)."""
    scores = taylor_scores(model, input_ids, batch_size=batch_size, accumulate=accumulate)
    info = {"score": f"sum |W * dL/dW| ({accumulate})", "loss": "mean token CE of model(x, labels=x)",
            "accumulate": accumulate, "batch_size": batch_size, "plus_heuristic": plus_heuristic,
            "windows": int(input_ids.shape[0]), "seq_len": int(input_ids.shape[1])}
    return ranked_order(DISPLAY_NAME, scores, plus_heuristic=plus_heuristic, info=info)
