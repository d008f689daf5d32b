"""Avg and RPT of a results row (docs/evaluation.md, verified on Table 8).

    Avg = (1/7) Σ_task score_task
    RPT = 100 · (1/7) Σ_task score_task / score_task^dense     # mean of per-task ratios, not Avg/Avg_dense

Scores are in percent; the dense scores are those of the same model's Dense row.

Standard errors (lm-eval's ``*_stderr`` of each task, in percent) propagate as for
independent tasks (first-order delta method):

    SE(Avg) = (1/7) sqrt(Σ_t se_t²)
    SE(RPT) = (100/7) sqrt(Σ_t (se_t / d_t)² + (s_t · se^d_t / d_t²)²)

A pruned row's Avg (RPT) is *within noise* of the Dense row when
|Avg − Avg_dense| ≤ z · sqrt(SE(Avg)² + SE(Avg_dense)²) (|RPT − 100| ≤ z · SE(RPT)), z = 2.
"""

from __future__ import annotations

import math
from typing import Sequence

NOISE_Z = 2.0  # differences within NOISE_Z standard errors are marked as noise


def average(scores: Sequence[float]) -> float:
    """Arithmetic mean of the task scores."""
    if not scores:
        raise ValueError("no scores to average")
    return sum(scores) / len(scores)


def relative_performance(scores: Sequence[float], dense_scores: Sequence[float]) -> float:
    """RPT: 100 × the mean over tasks of score / dense score (same task order in both)."""
    if len(scores) != len(dense_scores) or not scores:
        raise ValueError(f"need one dense score per score, got {len(scores)} and {len(dense_scores)}")
    if any(d == 0 for d in dense_scores):
        raise ValueError("a dense score is 0: RPT is undefined")
    return 100.0 * sum(s / d for s, d in zip(scores, dense_scores)) / len(scores)


def average_stderr(stderrs: Sequence[float]) -> float:
    """SE of the mean of independent task scores: sqrt(Σ se²) / n."""
    if not stderrs:
        raise ValueError("no standard errors")
    return math.sqrt(sum(se * se for se in stderrs)) / len(stderrs)


def relative_performance_stderr(scores: Sequence[float], stderrs: Sequence[float],
                                dense_scores: Sequence[float], dense_stderrs: Sequence[float]) -> float:
    """SE of RPT by the delta method (pruned and dense scores independent)."""
    n = len(scores)
    if not (n == len(stderrs) == len(dense_scores) == len(dense_stderrs)) or n == 0:
        raise ValueError("need one score, SE, dense score and dense SE per task")
    if any(d == 0 for d in dense_scores):
        raise ValueError("a dense score is 0: RPT is undefined")
    var = sum((se / d) ** 2 + (s * sed / (d * d)) ** 2
              for s, se, d, sed in zip(scores, stderrs, dense_scores, dense_stderrs))
    return 100.0 * math.sqrt(var) / n


def within_noise(difference: float, stderr: float, z: float = NOISE_Z) -> bool:
    """True when |difference| ≤ z · stderr."""
    return abs(difference) <= z * stderr
