"""Retention ratios r_t of the layers in a merge window (paper Eq. 3; docs/methods/come.md).

    n_t = BI_t / Σ BI            e_t = n_t^p            r_t = e_t / Σ e
    if max r < ρ:  r_{t*} = ρ,  r_t ← (1-ρ) · r_t / Σ_{t≠t*} r_t   (t* = first argmax)

The layer that changes the residual stream more (higher BI) keeps more units;
``p`` is the skewness exponent (p = ∞ puts all mass on the argmax) and ``ρ``
the minimum retention ratio of the dominant layer.  Integer unit budgets
(KV groups, FFN channels) come from :func:`distribute_and_round`.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np

ThresholdRule = Literal["paper", "released"]


def _first_argmax(x: np.ndarray) -> int:
    return int(np.argmax(x))  # numpy returns the first maximal index


def retention_ratios(bi: Sequence[float], p: float, rho: float = 0.0) -> np.ndarray:
    """Share r_t of the units kept from each window layer t (Σ r_t = 1).

    ``n^p / Σ n^p`` is evaluated as ``(n/max n)^p / Σ (n/max n)^p``, which is
    the same number without underflow for large ``p``.  All-zero BI splits
    equally.  Ties for the maximum go to the first (lowest) layer.
    """
    n = np.asarray(bi, dtype=np.float64).reshape(-1)
    if n.size == 0:
        raise ValueError("retention_ratios needs at least one layer")
    if not np.all(np.isfinite(n)) or np.any(n < 0):
        raise ValueError(f"BI must be finite and non-negative, got {n.tolist()}")
    if not (p >= 0):
        raise ValueError(f"skewness exponent p must be >= 0 (or inf), got {p}")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"minimum retention ratio rho must be in [0, 1], got {rho}")

    total = n.sum()
    n = n / total if total > 0 else np.full_like(n, 1.0 / n.size)
    if math.isinf(p):
        r = np.zeros_like(n)
        r[_first_argmax(n)] = 1.0
    else:
        e = (n / n.max()) ** p
        r = e / e.sum()

    top = _first_argmax(r)
    if r[top] < rho:
        others = np.arange(r.size) != top
        rest = r[others].sum()
        r[others] = r[others] * (1.0 - rho) / rest if rest > 0 else (1.0 - rho) / max(r.size - 1, 1)
        r[top] = rho
    return r


def rho_threshold(rho: float, n_leaves: int, rule: ThresholdRule = "paper") -> float:
    """ρ actually compared with max r_t for a window covering ``n_leaves`` original layers.

    ``paper``: ρ.  ``released`` (official code, CODE≠PAPER, docs/methods/come.md):
    ρ^(1/(n_leaves-1)), so re-merging a merged pair with a third layer uses √ρ.
    """
    if n_leaves < 2:
        raise ValueError(f"a merge window covers at least 2 original layers, got n_leaves={n_leaves}")
    if rule == "paper":
        return float(rho)
    if rule == "released":
        return float(rho ** (1.0 / (n_leaves - 1)))
    raise ValueError(f"unknown rho threshold rule {rule!r}; allowed: paper, released")


def distribute_and_round(n: int, ratios: Sequence[float]) -> list[int]:
    """Integer unit counts K_t summing to ``n`` (released ``utils/util.py``).

    Every layer but the max-ratio one (first argmax) gets ⌊n·r_t⌋; the
    max-ratio layer gets the remainder.
    """
    r = np.asarray(ratios, dtype=np.float64).reshape(-1)
    if r.size == 0 or np.any(r < 0) or not np.all(np.isfinite(r)):
        raise ValueError(f"ratios must be a non-empty vector of finite non-negative numbers, got {r.tolist()}")
    top = _first_argmax(r)
    counts = [int(math.floor(n * float(x))) for x in r]
    counts[top] = 0
    counts[top] = int(n) - sum(counts)
    if counts[top] < 0:
        raise ValueError(f"ratios {r.tolist()} sum to more than 1: cannot distribute {n} units")
    return counts
