"""BI, SBI and channel sensitivities of the *current* model, under each estimator (docs/methods/come.md).

Notation: ``h[k]`` is the residual stream entering layer ``k`` (``h[0]`` the
embeddings, ``h[L]`` the last layer's output, raw or after the final norm).
A *pair* ``(l, m)`` compares ``h[l]`` with ``h[l+m+1]``: ``m = 0`` is the BI
of layer ``l``, ``m >= 1`` the SBI of the window ``l..l+m`` (m+1 layers).

Estimators (switches of CoMe/CoMe-P):

* BI  ``cosine_mean`` (paper Eq. 1):  ``1 - mean_t cos``;
  ``released``:  ``Σ_t (1 - clamp(cos, 0, 1)) / L`` (released ``compute_bi``);
* SBI ``cosine_mean`` (paper, LLM-Streamline style): ``1 - mean_t cos``;
  ``released`` (released CoMe): ``Σ_windows arccos(clamp(cos_last, 0, 1)) / π / (L - m)``,
  the angular distance of the *last token of each calibration window* only;
  ``angular_all`` (released CoMe-P): ``mean_t arccos(clamp(cos, 0, 1)) / π`` over all tokens.

The released CoMe scores a fixed 2-layer span whatever its ``--merge-item``;
here every estimator scores the span that is actually merged (docs/methods/come.md).
Constant normalisers (``/L``, ``/(L-m)``) change neither an argmin nor the
ratios of Eq. 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from ...engine.block_influence import CosineStats, released_cosine, token_cosine

BIEstimator = Literal["cosine_mean", "released"]
SBIEstimator = Literal["cosine_mean", "released", "angular_all"]
BI_ESTIMATORS = ("cosine_mean", "released")
SBI_ESTIMATORS = ("cosine_mean", "released", "angular_all")


@dataclass
class AngularStats:
    """Σ_t arccos(clamp(cos, 0, 1)) / π over all tokens (NaN cosines read as 0.5, as the released code)."""

    angular_sum: float = 0.0
    n_tokens: int = 0

    def update(self, a: torch.Tensor, b: torch.Tensor) -> None:
        cos = released_cosine(token_cosine(a, b).double(), a, b)  # zero-norm states: 0/0 -> 0.5, as released
        self.angular_sum += float(torch.arccos(cos).sum()) / math.pi
        self.n_tokens += cos.numel()

    def mean(self) -> float:
        return self.angular_sum / max(self.n_tokens, 1)


@dataclass
class ModelScores:
    """Everything one iteration needs about the current ``n_layers``-layer model."""

    n_layers: int
    cosine: dict[tuple[int, int], CosineStats] = field(default_factory=dict)  # (l, m) -> stats
    angular: dict[tuple[int, int], AngularStats] = field(default_factory=dict)  # only for angular_all
    ffn: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> (D_int,) channel sensitivity
    kv: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> (n_kv,) KV-group sensitivity

    def bi(self, estimator: BIEstimator = "cosine_mean") -> np.ndarray:
        """BI of every layer (L,)."""
        if estimator == "cosine_mean":
            return np.array([self.cosine[(l, 0)].distance("cosine_mean") for l in range(self.n_layers)])
        if estimator == "released":
            return np.array([self.cosine[(l, 0)].bi_released(self.n_layers) for l in range(self.n_layers)])
        raise ValueError(f"unknown BI estimator {estimator!r}; allowed: {', '.join(BI_ESTIMATORS)}")

    def sbi(self, span: int, estimator: SBIEstimator = "cosine_mean") -> np.ndarray:
        """SBI of every window of ``span + 1`` layers, indexed by its first layer (L - span,)."""
        if span < 1:
            raise ValueError(f"an SBI window has at least 2 layers (span >= 1), got span={span}")
        starts = range(self.n_layers - span)
        if estimator == "cosine_mean":
            return np.array([self.cosine[(l, span)].distance("cosine_mean") for l in starts])
        if estimator == "released":
            return np.array([self.cosine[(l, span)].sbi_released(self.n_layers - span) for l in starts])
        if estimator == "angular_all":
            return np.array([self.angular[(l, span)].mean() for l in starts])
        raise ValueError(f"unknown SBI estimator {estimator!r}; allowed: {', '.join(SBI_ESTIMATORS)}")

    def sensitivity_tensors(self) -> dict[str, torch.Tensor]:
        """``layers.{l}.ffn`` and ``layers.{l}.kv_group`` for every layer (the scores_io naming)."""
        out = {}
        for l in range(self.n_layers):
            out[f"layers.{l}.ffn"] = self.ffn[l].detach().float().cpu().contiguous()
            out[f"layers.{l}.kv_group"] = self.kv[l].detach().float().cpu().contiguous()
        return out

    def keep_before(self, depth: int, n_layers: int) -> "ModelScores":
        """The scores still valid after the layers from ``depth`` on changed (now ``n_layers`` layers):
        pairs ending at or before ``h[depth]`` and sensitivities of layers < ``depth``."""
        return ModelScores(
            n_layers=n_layers,
            cosine={k: v for k, v in self.cosine.items() if k[0] + k[1] + 1 <= depth},
            angular={k: v for k, v in self.angular.items() if k[0] + k[1] + 1 <= depth},
            ffn={l: v for l, v in self.ffn.items() if l < depth},
            kv={l: v for l, v in self.kv.items() if l < depth},
        )
