"""One ``metrics.json`` record per evaluated checkpoint (the input of every results table).

Keys: model, checkpoint, method, variant, target_pct, removed_layers,
sparsity_pct (from the checkpoint's ``pruning.json``; Dense has none), tasks
(task -> flat lm-eval result) and perplexity (corpus -> PPL result).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


def pruning_info(ckpt_dir: str | Path) -> dict[str, Any]:
    """What a method wrote about its checkpoint (``pruning.json``); the dense model has none."""
    path = Path(ckpt_dir) / "pruning.json"
    if not path.is_file():
        return {"method": "Dense", "variant": "", "target_pct": 0, "removed_layers": 0, "sparsity_pct": 0.0}
    info = json.loads(path.read_text())
    return {k: info.get(k) for k in ("method", "variant", "target_pct", "removed_layers", "sparsity_pct")}


def collect_metrics(model: str, ckpt: str, ckpt_dir: str | Path, ppl_files: Sequence[str],
                    task_files: Sequence[str]) -> dict[str, Any]:
    tasks, ppl = {}, {}
    for f in task_files:
        r = json.loads(Path(f).read_text())
        tasks[r["task"]] = r
    for f in ppl_files:
        r = json.loads(Path(f).read_text())
        ppl[r["dataset"]] = r
    return {"model": model, "checkpoint": ckpt, **pruning_info(ckpt_dir), "tasks": tasks, "perplexity": ppl}
