"""Avg and RPT of a results row (come.md §8, verified on Table 8).

    Avg = (1/7) Σ_task score_task
    RPT = 100 · (1/7) Σ_task score_task / score_task^dense     # mean of per-task ratios, not Avg/Avg_dense

Scores are in percent; the dense scores are those of the same model's Dense row.
"""

from __future__ import annotations

from typing import Sequence


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
