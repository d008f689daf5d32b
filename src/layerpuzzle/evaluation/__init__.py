"""Evaluation: perplexity (SparseGPT/Wanda protocol) and the seven lm-eval benchmarks (docs/evaluation.md)."""

from .harness import TASKS, TaskSpec, evaluate_task
from .local_tasks import local_task_manager, render_local_tasks
from .perplexity import PerplexityResult, perplexity, window_tokens

__all__ = [
    "TASKS",
    "TaskSpec",
    "evaluate_task",
    "local_task_manager",
    "render_local_tasks",
    "PerplexityResult",
    "perplexity",
    "window_tokens",
]
