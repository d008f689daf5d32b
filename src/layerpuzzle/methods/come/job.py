"""One CoMe / CoMe-P checkpoint from a dense model directory (the body of rules come and come_p)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from ...data.calibration import load_calibration
from ...models.checkpoint import check_target
from ...models.sources import load_model
from .artifacts import removed_layers, save_merge_checkpoint
from .come_p import ComePSettings, come_p
from .progressive import ComeSettings, Execution, come
from .variants import DISPLAY_NAMES

log = logging.getLogger(__name__)


def build_checkpoint(key: str, *, model_dir: str | Path, calib_path: str | Path, out_dir: str | Path,
                     model_name: str, settings: dict[str, Any], execution: dict[str, Any],
                     calibration: dict[str, Any], target_fraction: float, variant: str = "",
                     model_note: str | None = None, dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    """Merge the dense model at ``model_dir`` to ``target_fraction`` with method ``key`` (come | come_p).

    Returns the facts for the provenance record (layer forwards, merges, timing).
    """
    check_target(model_dir, target_fraction)  # before loading: a target the model cannot take fails at once
    model, tokenizer = load_model(model_dir, dtype=dtype, device=device)
    dense_config = copy.deepcopy(model.config)
    input_ids = load_calibration(calib_path)
    n_remove = removed_layers(dense_config, target_fraction)
    ex = Execution(recompute=execution.get("recompute", "incremental"),
                   cache_every=int(execution.get("cache_every", 1)),
                   batch_size=int(execution.get("batch_size", 2)), device=None, progress=True)
    log.info("%s on %s: removing %d of %d layers, settings %s, calibration %s (%d windows x %d tokens), %s",
             DISPLAY_NAMES[key], model_name, n_remove, dense_config.num_hidden_layers, settings, calibration,
             input_ids.shape[0], input_ids.shape[1], ex)
    if key == "come":
        result = come(model, input_ids, n_remove, ComeSettings(**settings), ex)
    elif key == "come_p":
        result = come_p(model, input_ids, n_remove, ComePSettings(**settings), ex)
    else:
        raise ValueError(f"unknown CoMe method {key!r}; allowed: come, come_p")
    log.info("%d merges, %d decoder-layer forwards (per iteration %s), %.1f s", len(result.iterations),
             result.layer_forwards, [it.layer_forwards for it in result.iterations], result.seconds)
    save_merge_checkpoint(result, tokenizer, out_dir, dense_config=dense_config, base_model=model_name,
                          method=DISPLAY_NAMES[key], variant=variant, settings=settings,
                          execution={k: ex.__dict__[k] for k in ("recompute", "cache_every", "batch_size")},
                          calibration=calibration, target_fraction=target_fraction, model_note=model_note)
    return {"removed_layers": n_remove, **result.summary()}
