"""Evaluation: perplexity (SparseGPT/Wanda protocol), the seven lm-eval benchmarks and the extra ones (docs/evaluation.md)."""

from .harness import ALL_TASKS, EXTRA_TASKS, TASKS, TaskSpec, check_tasks, evaluate_task
from .local_tasks import local_task_manager, render_local_tasks
from .perplexity import PerplexityResult, perplexity, window_tokens

__all__ = [
    "ALL_TASKS",
    "EXTRA_TASKS",
    "TASKS",
    "check_tasks",
    "TaskSpec",
    "evaluate_task",
    "local_task_manager",
    "render_local_tasks",
    "PerplexityResult",
    "perplexity",
    "window_tokens",
]
