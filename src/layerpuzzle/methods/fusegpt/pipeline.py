"""FuseGPT-MI / MI+F as workflow steps (rules ``fusegpt_mi``, ``fusegpt_mif``; their calibration windows come
from rule ``calibration_set``, sampling ``random_windows``)."""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from ...data.calibration import load_calibration
from ...models.checkpoint import check_target, layers_to_remove, save_pruned
from ...models.sources import load_model
from .fuse_linear import CoefInit
from .fusion_loop import fusegpt_prune
from .macro_influence import check_precision
from .. import registry
from ..switches import card_notes

log = logging.getLogger(__name__)


def coef_init(variant: dict[str, Any]) -> CoefInit:
    if variant["variant"] == "released":
        return CoefInit(kind="zeros", lora="zeros")
    return CoefInit(kind=variant.get("coef_init", "kaiming"), std=float(variant.get("coef_std", 0.02)),
                    lora=variant.get("lora_init", "zeros"))


def run_fusegpt(model_dir: str, calib_path: str, out_dir: str, *, model_name: str, target_fraction: float, fuse: bool,
                variant: dict[str, Any], calibration: dict[str, Any], batch_size: int, offload_states: bool = False,
                group_size: int = 8, coef_rank: int = 128, lora_rank: int = 128, seed: int = 10,
                dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    check_target(model_dir, target_fraction)  # before loading: a target the model cannot take fails at once
    model, tok = load_model(model_dir, dtype=dtype, device=device)
    dense_config = copy.deepcopy(model.config)
    ids = load_calibration(calib_path)
    n_remove = layers_to_remove(dense_config, target_fraction)
    init = coef_init(variant) if fuse else None
    init_seed = int(variant.get("init_seed", seed))
    mi_precision = check_precision(variant.get("mi_precision", "exact"))
    t0 = time.perf_counter()  # the MI loop (and fusion) only
    result = fusegpt_prune(model, ids, n_remove, fuse=fuse, rank=coef_rank, lora_rank=lora_rank,
                           init=init or CoefInit(), seed=init_seed, group_size=group_size, batch_size=batch_size,
                           device=next(model.parameters()).device, state_device="cpu" if offload_states else None,
                           mi_precision=mi_precision)
    seconds = time.perf_counter() - t0
    log.info("FuseGPT-%s removed (original indices, in order): %s", "MI+F" if fuse else "MI", result.removed_original)
    notes = [f"Iterative Macro Influence on {ids.shape[0]} windows of {ids.shape[1]} tokens "
             f"({calibration['sampling']}, {calibration['dataset']}, seed {calibration['seed']}); the lowest-MI layer "
             "of the current stack is removed, then all layers are re-scored; no layer is protected.",
             "No post-training (CoMe's FuseGPT-MI / MI+F settings)."]
    params: dict[str, Any] = {"calibration": calibration, "batch_size": batch_size}
    if "mi_precision" in variant:
        params["mi_precision"] = mi_precision
        notes.append("mi_precision bfloat16: Macro-Influence similarities as the released code computes them on its "
                     "bf16 model (bf16 cosines, mean rounded to bf16; ties go to the lowest index)."
                     if mi_precision == "bfloat16" else "mi_precision exact: fp32 cosines, fp64 mean.")
    if fuse:
        params.update(variant=variant["variant"], coef_init=init.kind, lora_init=init.lora, init_seed=init_seed,
                      group_size=group_size, coef_rank=coef_rank, lora_rank=lora_rank)
        if init.kind == "normal":
            params["coef_std"] = init.std
        notes.append("The removed layer is fused into the other layers of its group with W_eff = W_t + B·A + "
                     "(P Q) ⊙ W_f, folded into plain Linear weights. "
                     + ("Official init (P = 0, B = 0): an exact no-op, so this equals FuseGPT-MI."
                        if variant["variant"] == "released" else
                        f"Random init of both P and Q ({init.kind}); CoMe's exact init is not stated."))
    method = registry.display_name("fusegpt_mif" if fuse else "fusegpt_mi")
    save_pruned(
        model, tok, out_dir, dense_config=dense_config, base_model=model_name, method=method,
        variant=variant.get("label") or "", params=params, target_fraction=target_fraction,
        layer_groups=result.groups,
        summary=f"{method}: iterative Macro-Influence layer removal (docs/methods/fusegpt_mi.md)"
                + (", with low-rank fusion of each removed layer into its group." if fuse else "."),
        notes=[*notes, *card_notes("fusegpt_mif" if fuse else "fusegpt_mi", variant)],
        extra_json={"fusegpt.json": {"removed_original": result.removed_original, "iterations": result.iterations}},
        pruning_seconds=seconds,
    )
    return {"removed_original": result.removed_original, "layer_forwards": result.layer_forwards}
