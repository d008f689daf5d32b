"""Taylor+: first-order Taylor block importance (CoMe App. A; docs/methods/taylor_plus.md).

    I_l = Σ_{W ∈ layer l} Σ_ij | Σ_b W_ij · ∂L_b/∂W_ij |              (accumulate = "signed_sum")
    I_l = Σ_b Σ_{W ∈ layer l} Σ_ij | W_ij · ∂L_b/∂W_ij |              (accumulate = "abs_per_batch")
    I_l = Σ_k Σ_{W ∈ layer l} Σ_ij | W_ij · G_k,ij |,  G_k = Σ_{j≤k} ∂L_j/∂W
                                                                     (accumulate = "released_cumulative")

``L_b`` is the mean next-token cross-entropy of calibration batch ``b``
(``model(x, labels=x).loss``); the weights are those of Mag+ (names containing
``"weight"``: projections and norm weights, no biases).

``signed_sum`` is the default and the paper's formula ``Σ_W Σ_w |∂L/∂w · w|``
with ``L`` the calibration loss: for equal-sized batches ``∂L/∂w`` is the mean
of the per-batch gradients, so the formula is the signed sum above up to the
constant 1/#batches.  (shortened-llm's script also sums the signed products
``W·grad`` over batches and takes |·| at the end.)  ``abs_per_batch`` is the
other reading of the formula; with a single batch the two coincide.

``released_cumulative`` is what the CoMe code (``methods/taylor.py``)
computes, and neither of the above: one window per backward pass, ``.grad``
never zeroed, and after *every* window the layer's score of the gradient
accumulated so far, ``G_k``, is added to ``I_l``.  Window ``k`` therefore
weighs ``K - k + 1`` times.  Its reductions are the code's: per weight
``|W·G|`` in the model dtype, summed over rows (``sum(1)``) then over the row
sums, read as a Python float; the block sum of those floats in fp32
(``torch.tensor(list).sum()``); the per-window block scores added in Python
floats.  Only weights whose name contains ``proj`` or ``norm`` count (all the
weights of LLaMA, Mistral, Qwen2 and Qwen3 layers).  The code divides by the
number of layers at the end, a constant that does not change the order.

``signed_sum`` and ``abs_per_batch`` compute products and sums in fp32
whatever the model dtype.
"""

from __future__ import annotations

import torch

from ...models import architecture as arch
from .magnitude import block_score, layer_weights, released_weight, released_weight_score, weight_score
from .removal import RemovalOrder, ranked_order
from .. import registry

DISPLAY_NAME = registry.display_name("taylor_plus")
ACCUMULATE = ("signed_sum", "abs_per_batch", "released_cumulative")


def released_block_score(weights, grads) -> float:
    """One window's block score as the CoMe code reduces it: :func:`.magnitude.released_weight_score`
    of every ``W·G`` (model dtype), summed in fp32 (:func:`.magnitude.block_score`)."""
    return block_score([released_weight_score(w.detach() * g) for w, g in zip(weights, grads)])


def _released_cumulative(model, input_ids: torch.Tensor, device) -> list[float]:
    """I_l = Σ_k block_score(W, G_k), G_k = the never-zeroed gradient after window k (one window per backward)."""
    per_layer = [[p for n, p in layer.named_parameters() if released_weight(n)] for layer in arch.layers(model)]
    params = [p for ps in per_layer for p in ps]
    grad_acc = [torch.zeros_like(p) for p in params]  # .grad of the code, in the model dtype
    scores = [0.0] * len(per_layer)
    for i in range(input_ids.shape[0]):
        x = input_ids[i : i + 1].to(device)
        loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=x, use_cache=False).loss
        for a, g in zip(grad_acc, torch.autograd.grad(loss, params)):
            a.add_(g)
        k = 0
        for l, ps in enumerate(per_layer):
            scores[l] += released_block_score(ps, grad_acc[k : k + len(ps)])
            k += len(ps)
    return scores


def taylor_scores(model, input_ids: torch.Tensor, *, batch_size: int = 1,
                  accumulate: str = "signed_sum") -> list[float]:
    """I_l for every decoder layer over the calibration windows ``input_ids`` (W, S).

    ``batch_size`` is ignored by ``released_cumulative`` (always one window per backward).
    """
    if accumulate not in ACCUMULATE:
        raise ValueError(f"accumulate={accumulate!r}; allowed: {', '.join(ACCUMULATE)}")
    device = next(model.parameters()).device
    per_layer = [[p for _, p in layer_weights(layer)] for layer in arch.layers(model)]
    params = [p for ps in per_layer for p in ps]
    flags = [p.requires_grad for p in params]
    was_training = model.training
    model.eval()
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            if accumulate == "released_cumulative":
                return _released_cumulative(model, input_ids, device)
            acc = [torch.zeros(p.shape, dtype=torch.float32, device=device) for p in params]
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
    if accumulate == "released_cumulative":
        batch_size = 1  # one window per backward, whatever the setting
    info = {"score": f"sum |W * dL/dW| ({accumulate})", "loss": "mean token CE of model(x, labels=x)",
            "accumulate": accumulate, "batch_size": batch_size, "plus_heuristic": plus_heuristic,
            "windows": int(input_ids.shape[0]), "seq_len": int(input_ids.shape[1])}
    return ranked_order(DISPLAY_NAME, scores, plus_heuristic=plus_heuristic, info=info)
