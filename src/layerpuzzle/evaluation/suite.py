"""Evaluate one checkpoint: PPL per corpus and each benchmark, written item by item.

Each item's result goes to its own JSON (``ppl-<corpus>.json``,
``task-<task>.json`` and lm-eval's raw ``task-<task>.raw.json``) and all of
them into ``metrics.json`` (:mod:`.metrics`), the input of the results tables.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..atomic import write_json
from ..data.text_sources import perplexity_text, resolve_mirror
from ..models.sources import load_model
from .harness import check_tasks, evaluate_task
from .metrics import collect_metrics
from .perplexity import perplexity as run_perplexity
from .perplexity import window_tokens

log = logging.getLogger(__name__)


def _by_suffix(paths, prefix: str, suffix: str) -> dict[str, str]:
    return {Path(p).name[len(prefix): -len(suffix)]: str(p) for p in paths}


def evaluate_checkpoint(ckpt_dir: str, *, model_name: str, ckpt_id: str, perplexity: dict[str, Any],
                        tasks: dict[str, dict[str, Any]], batch_size: int, max_length: int, mirror: str | None,
                        seed: int, dtype: str, device: str, outputs) -> dict[str, Any]:
    """``tasks``: task key -> settings ({"limit": ..., "log_samples": ..., MMLU's "subjects": ...}) for any subset of ``harness.ALL_TASKS``
    (e.g. MMLU alone); ``outputs`` must name a task-<key>.json and .raw.json for each."""
    check_tasks(tasks)  # an unknown task fails before the model is loaded
    model, tok = load_model(ckpt_dir, dtype=dtype, device=device)
    mirror_dir = resolve_mirror(mirror)
    ppl_out = _by_suffix(outputs.ppl, "ppl-", ".json")
    for dataset in perplexity["datasets"]:
        text, source = perplexity_text(dataset, mirror_dir)
        windows = window_tokens(text, tok, perplexity["seq_len"], perplexity["max_windows"].get(dataset))
        result = run_perplexity(model, windows, batch_size=batch_size)
        log.info("%s PPL %.3f on %d windows of %d", dataset, result.ppl, result.n_windows, result.seqlen)
        write_json(ppl_out[dataset], {"dataset": dataset, **result.to_dict(), "source": source})
    task_out = _by_suffix(outputs.tasks, "task-", ".json")
    raw_out = _by_suffix(outputs.raw, "task-", ".raw.json")
    summary = {}
    for task, settings in tasks.items():
        flat, raw = evaluate_task(model, tok, task, mirror=mirror_dir, limit=settings.get("limit"),
                                  batch_size=batch_size, max_length=max_length, seed=seed, device=None,
                                  log_samples=bool(settings.get("log_samples", False)),
                                  subjects=settings.get("subjects"))
        log.info("%s %s = %.4f (n=%s)", task, flat["metric"], flat["value"], flat["n_samples"])
        write_json(raw_out[task], raw)
        write_json(task_out[task], flat)
        summary[task] = flat["value"]
    record = collect_metrics(model_name, ckpt_id, ckpt_dir, list(ppl_out.values()), list(task_out.values()))
    write_json(outputs.metrics, record)
    return {"scores": summary}
