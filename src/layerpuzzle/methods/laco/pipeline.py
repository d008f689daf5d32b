"""LaCo as a workflow step: load the dense model, search, write the checkpoint (rule ``laco``)."""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from ...models.checkpoint import check_target, layers_to_remove, save_pruned
from ...models.sources import load_model, torch_dtype
from .collapse import CollapseParams, fixed_collapse, layer_collapse
from .merge_plan import plan_groups
from .sentences import SOURCE_NOTES, sample_sentences
from .. import registry
from ..switches import card_notes

log = logging.getLogger(__name__)

NOTES = {
    "described": "RDSC merge of LaCo Eq. 1 (θ* = θ_l + Σ_k (θ_{l+k} − θ_l)) on the 7 projection weights and their "
                 "biases; RMSNorm weights are the base layer's.",
    "released": "Merge as the released notebook computes it (merge_layers_return_model): the base layer gets the "
                "7 projection matrices of the last layer of its group and keeps its own norms and biases; "
                "this is what CoMe's LaCo numbers come from.",
}


# Variant keys that override the search settings (absent = the `search` / per_model_target value).
# C, L, H, I, T as variant keys make the ablation grids of LaCo Tables 10, 11, 13 (and the Table 9 ratios).
VARIANT_SEARCH_KEYS = ("stop_at_target", "layer_bounds", "merge_layers", "lowest_layer", "highest_layer", "interval",
                       "threshold")
SEARCH_DTYPES = ("model", "float32")


def search_settings(search: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """The search settings of one variant: ``search`` with the variant's own stop_at_target / layer_bounds."""
    return {**search, **{k: variant[k] for k in VARIANT_SEARCH_KEYS if k in variant}}


def variant_sentences(variant: dict[str, Any], sentences: list[str], mirror: str | None) -> list[str]:
    """The calibration sentences D of a variant: the configured ``sentences`` (source ``notebook``), or
    ``sentence_count`` sentences of ``sentence_source`` drawn with ``sentence_seed`` (LaCo Tables 12, 17, 18)."""
    source = variant.get("sentence_source", "notebook")
    if source == "notebook":
        return list(sentences)
    return sample_sentences(source, int(variant.get("sentence_count", 10)), int(variant.get("sentence_seed", 0)),
                            mirror)


def run_laco(model_dir: str, out_dir: str, *, model_name: str, target_fraction: float, variant: dict[str, Any],
             search: dict[str, Any], sentences: list[str], dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    """``sentences``: the variant's calibration sentences D, already drawn (:func:`variant_sentences`)."""
    check_target(model_dir, target_fraction)  # before loading: a target the model cannot take fails at once
    if variant.get("plan"):  # a plan that leaves the model fails before the weights load
        import json
        from pathlib import Path

        n = json.loads((Path(model_dir) / "config.json").read_text())["num_hidden_layers"]
        plan_groups(variant["plan"], n, key="methods.laco.variants[].plan")
    merge = variant.get("merge", "rdsc")
    kind = variant["variant"]
    search = search_settings(search, variant)
    params = CollapseParams(**search)
    search_dtype = variant.get("search_dtype", "model")
    if search_dtype not in SEARCH_DTYPES:
        raise ValueError(f"LaCo variant key `search_dtype`: value {search_dtype!r} is not allowed; "
                         f"allowed: {', '.join(SEARCH_DTYPES)}")
    # search_dtype float32: merge and score in fp32 as the notebook does, save in the configured dtype
    model, tok = load_model(model_dir, dtype="float32" if search_dtype == "float32" else dtype, device=device)
    save_dtype = torch_dtype(dtype, next(model.parameters()).device)
    dense_config = copy.deepcopy(model.config)
    target = layers_to_remove(dense_config, target_fraction)
    t0 = time.perf_counter()  # LaCo Table 4: the search and merges only
    if variant.get("plan"):
        groups = plan_groups(variant["plan"], dense_config.num_hidden_layers, key="methods.laco.variants[].plan")
        result = fixed_collapse(model, tok, sentences, groups, variant=kind, merge=merge)
    else:
        result = layer_collapse(model, tok, sentences, params, variant=kind, target_removed=target, merge=merge)
    seconds = time.perf_counter() - t0
    if model.dtype != save_dtype:
        model.to(save_dtype)
        model.config.dtype = save_dtype
    log.info("LaCo %s: removed %d (target %d) at T=%s after %d pass(es)", kind, result.removed, target,
             result.threshold_used, result.passes)
    notes = [NOTES[kind],
             "The search is the notebook loop (lay = H − C; reset when lay ≥ #layers); H and L are the notebook's "
             "0-based HIGHEST_LAY/LOWEST_LAY. Renumbering self_attn.layer_idx is our addition (LaCo does not).",
             "Similarity: mean over the calibration sentences (as if run alone: batched with right padding, only each sentence's own positions used) of the cosine between the "
             "flattened final-norm last hidden states of the dense model and the candidate."]
    if params.layer_bounds == "one_based":
        low, high = params.notebook_bounds(dense_config.num_hidden_layers)
        notes.append(f"layer_bounds one_based: L and H read as 1-based, so the notebook's LOWEST_LAY = {low} and "
                     f"HIGHEST_LAY = {high}.")
    if search_dtype == "float32":
        notes.append(f"search_dtype float32: merges and similarities computed in fp32 (the notebook loads the "
                     f"model in fp32); the checkpoint is saved in {str(save_dtype).removeprefix('torch.')}.")
    if variant.get("plan"):
        notes = [notes[0], f"Fixed merge plan {variant['plan']} (1-based inclusive ranges; LaCo Table 16's rule-based "
                           f"row): no search, so C, L, H, I, T and the target are not used; the final-state "
                           f"similarity to the dense model was {result.candidates[-1]['similarity']:.4f}."
                 if result.candidates else f"Fixed merge plan {variant['plan']}."]
    if merge == "drop":
        notes.append("merge drop (LaCo Table 15): each accepted group keeps only its base layer; the layers above "
                     "it are removed without merging.")
    if variant.get("sentence_source", "notebook") != "notebook":
        src = variant["sentence_source"]
        notes.append(f"Calibration sentences: {len(sentences)} drawn with seed {variant.get('sentence_seed', 0)} "
                     f"from {SOURCE_NOTES[src]}.")
    if params.stop_at_target and not variant.get("plan"):
        notes.append(f"stop_at_target: the search stops after {target} removed layers; T was lowered from "
                     f"{params.threshold} to {result.threshold_used} in steps of {params.threshold_step} "
                     f"({result.passes} pass(es)).")
    if result.shortfall:
        notes.append(f"SHORTFALL: only {result.removed} of {target} layers could be removed in [L, H].")
    label = variant.get("label") or ""
    save_pruned(
        model, tok, out_dir, dense_config=dense_config, base_model=model_name, method=registry.display_name("laco"), variant=label,
        params={"variant": kind, **search, **({"search_dtype": search_dtype} if "search_dtype" in variant else {}),
                **{k: variant[k] for k in ("merge", "plan", "sentence_source", "sentence_count", "sentence_seed")
                   if k in variant},
                "sentences": sentences}, target_fraction=target_fraction,
        layer_groups=result.groups,
        summary=f"LaCo ({kind}) collapsed groups of up to {params.merge_layers} adjacent layers while the "
                f"last-hidden-state cosine to the dense model stayed above T (docs/methods/laco.md).",
        notes=[*notes, *card_notes("laco", variant)],
        extra_json={"laco.json": {**result.summary(), "candidates": result.candidates}},
        pruning_seconds=seconds,
    )
    return {**result.summary(), "target_layers": target}
