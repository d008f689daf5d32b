"""LaCo as a workflow step: load the dense model, search, write the checkpoint (rule ``laco``)."""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...models.checkpoint import layers_to_remove, save_pruned
from ...models.sources import load_model
from .collapse import CollapseParams, layer_collapse

log = logging.getLogger(__name__)

NOTES = {
    "described": "RDSC merge of LaCo Eq. 1 (θ* = θ_l + Σ_k (θ_{l+k} − θ_l)) on the 7 projection weights and their "
                 "biases; RMSNorm weights are the base layer's.",
    "released": "Merge as the released notebook computes it (merge_layers_return_model): the base layer gets the "
                "7 projection matrices of the last layer of its group and keeps its own norms and biases; "
                "this is what CoMe's LaCo numbers come from.",
}


def run_laco(model_dir: str, out_dir: str, *, model_name: str, target_fraction: float, variant: dict[str, Any],
             search: dict[str, Any], sentences: list[str], dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    model, tok = load_model(model_dir, dtype=dtype, device=device)
    dense_config = copy.deepcopy(model.config)
    kind = variant["variant"]
    params = CollapseParams(**search)
    target = layers_to_remove(dense_config, target_fraction)
    result = layer_collapse(model, tok, sentences, params, variant=kind, target_removed=target)
    log.info("LaCo %s: removed %d (target %d) at T=%.3f after %d pass(es)", kind, result.removed, target,
             result.threshold_used, result.passes)
    notes = [NOTES[kind],
             "The search is the notebook loop (lay = H − C; reset when lay ≥ #layers); H and L are the notebook's "
             "0-based HIGHEST_LAY/LOWEST_LAY. Renumbering self_attn.layer_idx is our addition (LaCo does not).",
             "Similarity: mean over the calibration sentences (as if run alone: batched with right padding, only each sentence's own positions used) of the cosine between the "
             "flattened final-norm last hidden states of the dense model and the candidate."]
    if params.stop_at_target:
        notes.append(f"stop_at_target: the search stops after {target} removed layers; T was lowered from "
                     f"{params.threshold} to {result.threshold_used} in steps of {params.threshold_step} "
                     f"({result.passes} pass(es)).")
    if result.shortfall:
        notes.append(f"SHORTFALL: only {result.removed} of {target} layers could be removed in [L, H].")
    label = variant.get("label") or ""
    save_pruned(
        model, tok, out_dir, dense_config=dense_config, base_model=model_name, method="LaCo", variant=label,
        params={"variant": kind, **search, "sentences": sentences}, target_fraction=target_fraction,
        layer_groups=result.groups,
        summary=f"LaCo ({kind}) collapsed groups of up to {params.merge_layers} adjacent layers while the "
                f"last-hidden-state cosine to the dense model stayed above T (baselines.md §5).",
        notes=notes,
        extra_json={"laco.json": {**result.summary(), "candidates": result.candidates}},
    )
    return {**result.summary(), "target_layers": target}
