"""MKA fusion ratios and the merge loop (docs/methods/mka.md; MKA ``pipeline.py`` steps 6–7).

Ratio of a pair (i, j), from the NPIB matrix S computed once on the dense model
(``compute_fusion_ratios``, β = 1):

    s_i = mean_k S[i, k],   r_i = s_i / (s_i + s_j),   λ = e^{β r_i} / (1 + e^{β r_i}),   λ_j = 1 − λ

(r_i ≈ 0.5 gives λ ≈ sigmoid(0.5) ≈ 0.62 : 0.38, CoMe's "≈ 0.6 : 0.4").  NaN
entries are left out of the means (the code's ``np.mean`` would propagate them).

Merge loop: ``n`` times, always the *last two* layers of the current stack,
i = n_cur − 2 and j = n_cur − 1 (S is indexed by these current indices, as in the
code; the paper's most-similar-pair selection is not implemented there).

* ``described``: W_i ← λ W_i + (1 − λ) W_j for the 7 projection weights, then
  layer j is deleted.  Biases stay layer i's (the paper: biases are not fused);
  RMSNorm weights stay layer i's unless ``fuse_norms`` (CoMe's own MKA
  reimplementation fuses both norms with the same ratio, docs/methods/mka.md).
* ``released``: the code writes the fused tensors into a throw-away
  ``state_dict()`` copy, so nothing is fused: the result is the dense model with
  its last ``n`` layers deleted.  The ratios are still computed and logged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ...models import architecture as arch
from ..laco.rdsc import PROJECTIONS

FUSIONS = ("described", "released")
Fusion = Literal["described", "released"]
NORMS = ("input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm")


def fusion_ratio(S: np.ndarray, i: int, j: int, beta: float = 1.0) -> float:
    """λ_i = sigmoid(β · s_i / (s_i + s_j)) with s = NaN-skipping row means of S."""
    s_i, s_j = float(np.nanmean(S[i])), float(np.nanmean(S[j]))
    r = s_i / (s_i + s_j) if (s_i + s_j) != 0 else math.nan
    if not math.isfinite(r):
        r = 0.5  # undefined similarity: equal shares before the sigmoid
    return float(math.exp(beta * r) / (1.0 + math.exp(beta * r)))


@dataclass
class MergeResult:
    groups: list[list[int]]
    steps: list[dict[str, Any]] = field(default_factory=list)


@torch.no_grad()
def _weighted_merge(model, i: int, j: int, lam: float, fuse_norms: bool) -> None:
    li, lj = arch.layers(model)[i], arch.layers(model)[j]
    names = [f"{p}.weight" for p in PROJECTIONS]
    if fuse_norms:
        names += [f"{n}.weight" for n in NORMS if _has(li, n)]
    for name in names:
        wi, wj = li.get_parameter(name), lj.get_parameter(name)
        wi.copy_((lam * wi.float() + (1.0 - lam) * wj.float()).to(wi.dtype))


def _has(layer, path: str) -> bool:
    try:
        layer.get_submodule(path)
        return True
    except AttributeError:
        return False


@torch.no_grad()
def merge_last_layers(model, S: np.ndarray, n_remove: int, fusion: Fusion = "described", *, beta: float = 1.0,
                      fuse_norms: bool = False) -> MergeResult:
    """Remove ``n_remove`` layers from the top of ``model`` (in place) by MKA's loop."""
    if fusion not in FUSIONS:
        raise ValueError(f"MKA fusion {fusion!r}; allowed: {', '.join(FUSIONS)}")
    n0 = arch.num_layers(model)
    if not 0 <= n_remove < n0:
        raise ValueError(f"cannot remove {n_remove} of {n0} layers")
    groups = [[k] for k in range(n0)]
    steps = []
    for _ in range(n_remove):
        n = len(groups)
        i, j = n - 2, n - 1
        lam = fusion_ratio(S, i, j, beta)
        steps.append({"layer_i": i, "layer_j": j, "lambda_i": lam, "lambda_j": 1.0 - lam,
                      "applied": fusion == "described"})
        if fusion == "described":
            _weighted_merge(model, i, j, lam, fuse_norms)
            groups[i] = groups[i] + groups[j]
        groups.pop(j)
        if fusion == "described":
            arch.drop_layers(model, [j])
    if fusion == "released":
        arch.drop_layers(model, range(n0 - n_remove, n0))
    return MergeResult(groups=groups, steps=steps)
