"""One ``metrics.json`` record per evaluated checkpoint (the input of every results table).

Keys: model, checkpoint, method, variant, target_pct, removed_layers,
sparsity_pct, dense_layers (from the checkpoint's ``pruning.json``; Dense has none,
its layers come from its ``config.json``), target_layers (k of a layer-count
target ``n<k>``, whose target_pct is null), oneshot (a quantized or sparsified checkpoint's scheme,
bits, group size and, for SparseGPT, zeroed_pct), tasks (task -> flat lm-eval result)
and perplexity (corpus -> PPL result). ``removed_layers`` and ``dense_layers``
give MKA's compression ratio (:func:`layerpuzzle.sparsity.compression_ratio`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


def pruning_info(ckpt_dir: str | Path) -> dict[str, Any]:
    """What a method wrote about its checkpoint (``pruning.json``); the dense model has none."""
    path = Path(ckpt_dir) / "pruning.json"
    if not path.is_file():
        config = Path(ckpt_dir) / "config.json"
        layers = json.loads(config.read_text()).get("num_hidden_layers") if config.is_file() else None
        return {"method": "Dense", "variant": "", "target_pct": 0, "removed_layers": 0, "sparsity_pct": 0.0,
                "dense_layers": layers}
    info = json.loads(path.read_text())
    out = {k: info.get(k) for k in ("method", "variant", "target_pct", "removed_layers", "sparsity_pct", "dense_layers")}
    if info.get("target_layers") is not None:
        out["target_layers"] = info["target_layers"]
    if info.get("oneshot") is not None:  # a quantized / sparsified checkpoint: its scheme (docs/quantization.md)
        out["oneshot"] = info["oneshot"]
    return out


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
