"""LLM-Pruner as a workflow step (rule ``llm_pruner``): check the variant against the model's depth, load the
dense model and the calibration windows, solve the ratio for the target, prune, write the uneven checkpoint.

``pruning.json`` holds what the results table reads (method, variant, target, ``removed_layers`` 0,
``sparsity_pct`` = the parameters removed, in percent of the dense count) and ``pruning_seconds`` (also
``timing.core_s``): gradients, importance and surgery only (LaCo Table 4's definition), not loading, the
ratio search or saving.
"""

from __future__ import annotations

import logging
from typing import Any

from ...config import target_label
from ...data.calibration import load_calibration
from ...models.checkpoint import target_pct, model_card
from ...models.sources import load_model
from ...models.uneven import save_uneven, uneven_card_section
from .. import registry
from ..switches import card_notes, method_switches
from .counting import ratio_for_sparsity
from .prune import prune_width
from .settings import check_layers, check_ratio, default_layers

log = logging.getLogger(__name__)
KEY = "llm_pruner"


def resolve_variant(variant: dict[str, Any], num_layers: int) -> dict[str, Any]:
    """The variant's settings with their defaults, checked against a model of ``num_layers`` layers.

    Raises ValueError naming the variant key, the value and what is allowed (before any weight is loaded).
    """
    switches = method_switches(KEY)
    out = {name: switches[name].check(variant.get(name, s.default), f"methods.{KEY} variant key `{name}`")
           for name, s in switches.items()}
    layers = variant.get("layers")
    out["layers"] = check_layers("layers", tuple(layers) if layers is not None else default_layers(num_layers),
                                 num_layers)
    mlp = variant.get("mlp_layers")
    out["mlp_layers"] = check_layers("mlp_layers", tuple(mlp) if mlp is not None else out["layers"], num_layers)
    out["ratio"] = check_ratio(variant["ratio"]) if variant.get("ratio") is not None else None
    return out


def num_layers_of(model_dir: str) -> int:
    """The depth of the prepared model, read from its config.json (no weights)."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(str(model_dir)).num_hidden_layers)


def run_llm_pruner(model_dir: str, calib_path: str, out_dir: str, *, model_name: str, target_fraction: float,
                   variant: dict[str, Any], calibration: dict[str, Any], batch_size: int | None = None,
                   dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    settings = resolve_variant(variant, num_layers_of(model_dir))
    model, tok = load_model(model_dir, dtype=dtype, device=device)
    ids = load_calibration(calib_path)
    attention_layers, mlp_layers = list(range(*settings["layers"])), list(range(*settings["mlp_layers"]))
    if settings["ratio"] is None:
        ratio, predicted = ratio_for_sparsity(model, target_fraction, attention_layers, mlp_layers)
        how = (f"ratio {ratio:.6g} solved from the parameter count: the largest removed fraction at or below the "
               f"target {target_fraction:g} ({100 * predicted:.4f} %)")
    else:
        ratio, how = settings["ratio"], f"fixed ratio {settings['ratio']:g} (the target {target_fraction:g} only labels the row)"
    model, record = prune_width(model, ids, ratio=ratio, layers=settings["layers"], mlp_layers=settings["mlp_layers"],
                                importance=settings["importance"], aggregation=settings["aggregation"],
                                batch_size=batch_size)
    name = registry.display_name(KEY)
    label = variant.get("label") or ""
    params = {"importance": settings["importance"], "aggregation": settings["aggregation"],
              "layers": list(settings["layers"]), "mlp_layers": list(settings["mlp_layers"]), "ratio": ratio,
              "ratio_given": settings["ratio"] is not None, "calibration": calibration, "batch_size": batch_size}
    pruning = {
        "method": name, "variant": label, "params": params, "target_fraction": float(target_fraction),
        "target_pct": target_pct(target_fraction), "removed_layers": 0,
        "sparsity_pct": round(100 * record["sparsity"], 4), "dense_layers": len(record["layers"]),
        "params_before": record["params_before"], "params_after": record["params_after"],
        "pruning_seconds": record["pruning_seconds"], "timing": record["timing"],
    }
    notes = [how + ".",
             f"Layers [{settings['layers'][0]}, {settings['layers'][1]}) lose KV groups and layers "
             f"[{settings['mlp_layers'][0]}, {settings['mlp_layers'][1]}) MLP channels (local per-layer ratio, one "
             f"step); the hidden size and all other layers are untouched.",
             f"Calibration: {ids.shape[0]} windows of {ids.shape[1]} tokens ({calibration.get('dataset')}, "
             f"seed {calibration.get('seed')}); the released recipe uses 10 BookCorpus samples of 64 tokens.",
             f"{pruning['sparsity_pct']:.2f} % of the parameters removed ({record['params_before']} -> "
             f"{record['params_after']}); pruning_seconds {record['pruning_seconds']:.3f} (gradients, importance, "
             f"surgery).",
             *card_notes(KEY, settings)]
    card = model_card(
        title=f"{model_name} — {name}{f' ({label})' if label else ''}, {pruning['sparsity_pct']:.2f}% of parameters "
              f"removed (target {target_label(target_fraction)})",
        method=name, model=model_name, params={**params, "target_fraction": target_fraction}, layer_map=None,
        summary=f"{name}: block-wise width pruning with Taylor importance (docs/methods/llm_pruner.md); the layers "
                "keep their number but not their widths (`uneven_layers.json`, kind `width_pruned`).",
        notes=notes, load_section=uneven_card_section(record["kind"]))
    save_uneven(model, tok, out_dir, record=record, card=card, extra_json={"pruning.json": pruning})
    log.info("%s %s: %s", name, label or "(default)", how)
    return pruning
