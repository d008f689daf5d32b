"""Layer similarity scores: BI (ShortGPT) and SBI (skip-block influence).

Notation (docs/layer_scores.md): ``h[k]`` is the residual stream entering decoder layer
``k`` (``h[0]`` = embeddings) and ``h[L]`` the output of the last layer.

* BI of layer ``l`` (Eq. 1):           ``BI_l = 1 - E_{x,t} cos(h[l]_t, h[l+1]_t)``
* SBI of the window ``l..l+m`` (Eq. 2): ``SBI_{l:l+m} = 1 - E_{x,t} cos(h[l]_t, h[l+m+1]_t)``

Two estimators of each exist (docs/layer_scores.md): the paper's all-token cosine
(mean over every token) and the released code's.  The released code's BI is
``Σ_t (1 - clamp(cos, 0, 1))`` (NaN cosines read as 0.5) and its SBI is the
angular distance ``Σ_windows arccos(clamp(cos(h[l]_last, h[l+m+1]_last), 0, 1)) / π``
over the *last token of each calibration window only*.  Both released sums are
divided by the number of scored entries, a constant the code also applies.

The functions here are streaming accumulators: feed them one batch at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

ESTIMATORS = ("cosine_mean", "released")


def token_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-token cosine similarity over the hidden dimension, computed in fp32."""
    return F.cosine_similarity(a.float(), b.float(), dim=-1, eps=1e-8)


def released_cosine(cos: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The released codes' clamped cosine: ``clamp(nan_to_num(a·b / (|a||b|), 0.5), 0, 1)``.

    ``cos`` is :func:`token_cosine` of ``a`` and ``b``; where a token's state has zero norm the
    released division is 0/0 = NaN, read as 0.5 (``token_cosine`` gives 0 there).
    """
    degenerate = (a.float().norm(dim=-1) == 0) | (b.float().norm(dim=-1) == 0) | cos.isnan()
    return torch.where(degenerate, torch.full_like(cos, 0.5), cos).clamp(0, 1)


@dataclass
class CosineStats:
    """Running sums of per-token cosines between two hidden-state streams."""

    cos_sum: float = 0.0          # Σ_t cos
    clamped_distance_sum: float = 0.0  # Σ_t (1 - clamp(cos, 0, 1))
    n_tokens: int = 0
    last_angular_sum: float = 0.0  # Σ_windows arccos(clamp(cos_last, 0, 1)) / π
    n_windows: int = 0

    def update(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Add a batch: ``a`` and ``b`` are (B, S, D) streams at two depths."""
        cos = token_cosine(a, b).double()
        self.cos_sum += float(cos.sum())
        clamped = released_cosine(cos, a, b)
        self.clamped_distance_sum += float((1.0 - clamped).sum())
        self.n_tokens += cos.numel()
        last = clamped[:, -1]
        self.last_angular_sum += float(torch.arccos(last).sum()) / math.pi
        self.n_windows += cos.shape[0]

    def distance(self, estimator: str, normaliser: int = 1) -> float:
        """The score under ``estimator``: paper ``1 - mean cos`` or the released sum / ``normaliser``."""
        if estimator == "cosine_mean":
            return 1.0 - self.cos_sum / max(self.n_tokens, 1)
        raise ValueError(f"estimator {estimator!r} needs bi_released/sbi_released; allowed: {ESTIMATORS}")

    def bi_released(self, n_layers: int) -> float:
        """Released-code BI: Σ_t (1 - clamp(cos, 0, 1)) / L (docs/layer_scores.md)."""
        return self.clamped_distance_sum / n_layers

    def sbi_released(self, n_windows_scored: int) -> float:
        """Released-code SBI: last-token angular distance summed over windows / number of scored windows."""
        return self.last_angular_sum / n_windows_scored


def block_influence(h_in: torch.Tensor, h_out: torch.Tensor) -> float:
    """BI = 1 - mean_t cos(h_in_t, h_out_t) for one pair of tensors (Eq. 1)."""
    s = CosineStats()
    s.update(h_in.reshape(1, -1, h_in.shape[-1]) if h_in.dim() == 2 else h_in,
             h_out.reshape(1, -1, h_out.shape[-1]) if h_out.dim() == 2 else h_out)
    return s.distance("cosine_mean")


@dataclass
class ScoreTable:
    """BI per layer and SBI per window, under both estimators, as plain lists."""

    n_layers: int
    max_span: int
    pairs: dict[tuple[int, int], CosineStats] = field(default_factory=dict)  # (l, m) -> stats of h[l] vs h[l+m+1]

    def stats(self, start: int, m: int) -> CosineStats:
        return self.pairs.setdefault((start, m), CosineStats())

    def rows(self) -> list[dict]:
        """Long-format rows: layer (window start), span m (0 = BI), estimator, value."""
        out = []
        for (l, m), s in sorted(self.pairs.items()):
            n_scored = self.n_layers - m
            out.append({"layer": l, "span": m, "estimator": "cosine_mean", "value": s.distance("cosine_mean")})
            if m == 0:
                out.append({"layer": l, "span": 0, "estimator": "released", "value": s.bi_released(self.n_layers)})
            else:
                out.append({"layer": l, "span": m, "estimator": "released", "value": s.sbi_released(n_scored)})
        for r in out:
            r["n_tokens"] = self.pairs[(r["layer"], r["span"])].n_tokens
        return out
