"""A CoMe / CoMe-P run as a checkpoint directory (docs/methods/come.md).

Besides the HF weights, tokenizer, README card, ``layer_map.json`` and
``pruning.json`` of :func:`~layerpuzzle.models.checkpoint.save_pruned`:

* ``iterations.parquet`` — one row per merge: BI of every layer, SBI of every
  window, the chosen window and its SBI, ratios, ρ threshold, KV groups / FFN
  channels kept per layer, n_leaves, the layer groups after it, the depth the
  re-scoring started from, layer forwards and seconds;
* ``sensitivity/iter_XX.safetensors`` — ``layers.{l}.ffn`` / ``layers.{l}.kv_group``
  of the model the iteration merged;
* ``candidates.parquet`` (CoMe-P) — iteration, window, r, NLL, chosen;
* ``distillation_pairs.json`` — P: merged student layer b ↔ teacher layer a;
* ``come_run.json`` — resolved settings, calibration, layer forwards, timing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from safetensors.torch import save_file

from ...models.checkpoint import layers_to_remove, save_pruned
from .layer_groups import distillation_pairs
from .progressive import MergeResult
from .. import registry
from ..switches import card_notes


def iterations_frame(result: MergeResult) -> pd.DataFrame:
    rows = []
    for it in result.iterations:
        row = it.row()
        row["groups"] = json.dumps(row["groups"])
        rows.append(row)
    return pd.DataFrame(rows)


def candidates_frame(result: MergeResult) -> pd.DataFrame:
    rows = [{"iteration": it.iteration, "window_start": it.window_start, "window_stop": it.window_stop, **c}
            for it in result.iterations for c in it.candidates]
    return pd.DataFrame(rows, columns=["iteration", "window_start", "window_stop", "candidate", "r", "nll", "chosen"])


def write_run_artifacts(directory: str | Path, result: MergeResult, *, with_candidates: bool) -> None:
    """Write iterations.parquet, sensitivity/iter_XX.safetensors and (CoMe-P) candidates.parquet into ``directory``."""
    directory = Path(directory)
    iterations_frame(result).to_parquet(directory / "iterations.parquet", index=False)
    (directory / "sensitivity").mkdir(exist_ok=True)
    for it in result.iterations:
        meta = {"iteration": str(it.iteration), "n_layers": str(it.n_layers),
                "window": f"{it.window_start}..{it.window_stop}"}
        path = directory / "sensitivity" / f"iter_{it.iteration:02d}.safetensors"
        save_file(it.sensitivity, str(path), metadata=meta)
    if with_candidates:
        candidates_frame(result).to_parquet(directory / "candidates.parquet", index=False)


def run_notes(method: str, settings: dict[str, Any], result: MergeResult, calibration: dict[str, Any],
              model_note: str | None, recompute: str) -> list[str]:
    """The model card's notes: every switch in words, inferred/unknown settings, the cost."""
    notes = card_notes(registry.key_of(method), settings)  # every switch in words (methods/come/switches.py)
    if method == "CoMe":
        notes.append(f"Retention ratios r_t ∝ BI_t^p with p = {settings['p']}, minimum share rho = {settings['rho']} "
                     f"({settings['layers_per_merge']} layers per merge).")
    else:
        grid = (f"np.arange(0, 1 + 1/{settings['granularity']}, 1/{settings['granularity']}) (released float grid)"
                if settings.get("ratio_grid") == "released" else f"{{i/{settings['granularity']}}}")
        notes.append(f"Ratio [r, 1-r] searched over r ∈ {grid} by summed calibration NLL.")
    if model_note:
        notes.append(model_note)
    notes.append(f"Calibration: {calibration.get('dataset')} train, {calibration.get('n')} rows, seed "
                 f"{calibration.get('seed')}, {result.n_windows} windows of {result.seq_len} tokens "
                 f"(paper: 256 rows, 2048-token windows).")
    notes.append(f"{len(result.iterations)} merges, {result.layer_forwards} decoder-layer forwards over the "
                 f"calibration set (recompute={recompute}), {result.seconds:.1f} s.")
    notes.append("Per-iteration scores: iterations.parquet; channel sensitivities: sensitivity/iter_XX.safetensors"
                 + ("; candidate NLLs: candidates.parquet." if method == "CoMe-P" else "."))
    return notes


def save_merge_checkpoint(result: MergeResult, tokenizer, out_dir: str | Path, *, dense_config, base_model: str,
                          method: str, variant: str, settings: dict[str, Any], execution: dict[str, Any],
                          calibration: dict[str, Any], target_fraction: float, model_note: str | None = None,
                          extra_notes: Sequence[str] = ()) -> Path:
    """Write the merged model of ``result`` and its records with :func:`save_pruned`."""
    summary_text = (f"{method}: {len(result.iterations)} progressive concatenation merges "
                    f"(\"Layer as Puzzle Pieces\", arXiv 2510.15304) of `{base_model}`.")
    notes = run_notes(method, settings, result, calibration, model_note, execution.get("recompute", "incremental"))
    run = {"method": method, "settings": settings, "execution": execution, "calibration": calibration,
           **result.summary()}
    return save_pruned(
        result.model, tokenizer, out_dir, dense_config=dense_config, base_model=base_model, method=method,
        variant=variant, params=settings, target_fraction=target_fraction, layer_groups=result.groups,
        summary=summary_text, notes=[*notes, *extra_notes],
        extra_json={"come_run.json": run, "distillation_pairs.json": distillation_pairs(result.groups)},
        write_extra=lambda tmp: write_run_artifacts(tmp, result, with_candidates=method == "CoMe-P"),
        pruning_seconds=result.seconds,  # the merge loop (scores, merges, recomputation), not load/save
    )


def removed_layers(dense_config, target_fraction) -> int:
    """Layers to remove for a target (Table 3 rule for a fraction; k for ``{"layers": k}``)."""
    return layers_to_remove(dense_config, target_fraction)
