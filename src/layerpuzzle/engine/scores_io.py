"""Run the calibration pass on a model and write its artifacts.

* ``bi.parquet`` / ``sbi.parquet``: long format, one row per (layer or window
  start, span, estimator) with columns model, calib, layer, span, estimator,
  value, n_tokens (span 0 = BI; span m = SBI of the window layer..layer+m);
* ``activation_stats.safetensors``: ``layers.{l}.down_proj_input_abs_mean`` and
  ``layers.{l}.o_proj_input_abs_mean`` (E_t|a| per channel, docs/layer_scores.md);
* ``channel_sensitivity.safetensors``: ``layers.{l}.ffn`` (per intermediate
  channel) and ``layers.{l}.kv_group`` (per KV-head group), Eq. 4.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_file
from ..models import architecture as arch
from .channel_sensitivity import layer_sensitivity
from .layer_scores import CalibrationScores, score_layers
from .runner import LayerwiseRunner


def score_frames(scores: CalibrationScores, model_name: str, calib_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.DataFrame(scores.table.rows())
    df.insert(0, "calib", calib_id)
    df.insert(0, "model", model_name)
    return df[df.span == 0].reset_index(drop=True), df[df.span > 0].reset_index(drop=True)


def sensitivity_tensors(model, scores: CalibrationScores) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    acts, sens = {}, {}
    for l, layer in enumerate(arch.layers(model)):
        down, o = scores.activations.mean_abs(l)
        acts[f"layers.{l}.down_proj_input_abs_mean"] = down
        acts[f"layers.{l}.o_proj_input_abs_mean"] = o
        ffn, kv = layer_sensitivity(layer, down, o, model.config)
        sens[f"layers.{l}.ffn"] = ffn.float().cpu().contiguous()
        sens[f"layers.{l}.kv_group"] = kv.float().cpu().contiguous()
    return acts, sens


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Atomic safetensors write; metadata goes into one key as sorted JSON, so the bytes are
    reproducible (the writer orders several metadata keys differently from run to run)."""
    meta = {"layerpuzzle": json.dumps(metadata, sort_keys=True)} if metadata else None
    with atomic_file(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)


def read_sensitivity(path: str | Path, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = load_file(str(path))
    return t[f"layers.{layer}.ffn"], t[f"layers.{layer}.kv_group"]


def compute_and_save_scores(model, input_ids: torch.Tensor, *, model_name: str, calib_id: str, max_span: int,
                            last_layer_output: str, batch_size: int, outputs: dict[str, str],
                            keep_hidden_dir: str | None = None, device=None) -> dict[str, Any]:
    runner = LayerwiseRunner(model, input_ids, batch_size=batch_size, device=device or next(model.parameters()).device)
    on_state = None
    if keep_hidden_dir:
        Path(keep_hidden_dir).mkdir(parents=True, exist_ok=True)

        def on_state(k, hidden):
            write_safetensors({"hidden": torch.cat(hidden).cpu()}, Path(keep_hidden_dir) / f"h{k:03d}.safetensors")

    scores = score_layers(runner, max_span=max_span, last_layer_output=last_layer_output, on_state=on_state)
    bi, sbi = score_frames(scores, model_name, calib_id)
    write_parquet(bi, outputs["bi"])
    write_parquet(sbi, outputs["sbi"])
    acts, sens = sensitivity_tensors(model, scores)
    meta = {"model": model_name, "calib": calib_id, "n_tokens": str(scores.n_windows * scores.seq_len)}
    write_safetensors(acts, outputs["activations"], meta)
    write_safetensors(sens, outputs["sensitivity"], meta)
    return {"layer_forwards": scores.layer_forwards, "n_windows": scores.n_windows, "seq_len": scores.seq_len}
