"""Element-wise Taylor salience of LLM-Pruner (Ma, Fang & Wang, NeurIPS 2023, §3.2).

The loss change when weight ``w_k`` is set to zero, by a second-order Taylor expansion
(the paper's element-wise importance, Eq. 3 of arXiv:2305.11627), with the Hessian diagonal
approximated by the Fisher information over the N calibration samples, as the paper does
right after it::

    ΔL_k ≈ ∂L/∂w_k · w_k − ½ · w_k · H_kk · w_k,       H_kk ≈ (1/N) Σ_j (∂L_j/∂w_k)²

``param_first``  s = w·g               (first-order term only)
``param_second`` s = w·H·w             (second-order term only, as the released code computes it: no ½)
``param_mix``    s = w·g − ½·w·H·w     (both)

``g`` = ∂L/∂w of the mean LM loss over all calibration windows; ``L_j`` = the loss of window j
alone.  A unit's importance is then a sum of ``|s|`` over its weights (:mod:`.importance`).
All arithmetic in fp32.
"""

from __future__ import annotations

import torch

from .settings import IMPORTANCES, check_choice


def salience(w: torch.Tensor, g: torch.Tensor | None, h: torch.Tensor | None, importance: str) -> torch.Tensor:
    """The signed element-wise salience ``s`` of weight ``w`` with gradient ``g`` and Fisher diagonal ``h``."""
    check_choice("importance", importance, IMPORTANCES)
    w = w.detach().float()
    if importance == "param_first":
        return w * g.float()
    second = w * h.float() * w
    if importance == "param_second":
        return second
    return w * g.float() - 0.5 * second


def needs_fisher(importance: str) -> bool:
    return importance in ("param_second", "param_mix")


def needs_gradient(importance: str) -> bool:
    return importance in ("param_first", "param_mix")
