"""SliceGPT as a workflow step (rule ``slicegpt``): settings checked and the width solved from the model's
config before any weight is loaded, then load, slice, write the uneven checkpoint.

``pruning.json`` holds what the results table reads (method, variant, target, ``removed_layers`` 0,
``sparsity_pct`` = 1 − sliced / dense parameters in percent, the dense count as the project counts it: a tied
embedding once) and ``pruning_seconds`` (also ``timing.core_s``): untie, fold, calibration forwards, PCAs and
rotations only (LaCo Table 4's definition), not loading or saving.
"""

from __future__ import annotations

import logging
from typing import Any

from ...config import target_label
from ...data.calibration import load_calibration
from ...models.checkpoint import target_pct
from ...models.sources import load_model
from ...sparsity import ArchSpec
from .. import registry
from ..switches import card_notes, method_switches
from .checkpoint import save_sliced
from .method import resolve_width, slice_model
from .settings import SliceSettings

log = logging.getLogger(__name__)
KEY = "slicegpt"
VARIANT_KEYS = ("target_rule", "round_interval", "slice_head", "final_orientation")


def settings_for(variant: dict[str, Any], target_fraction: float, *, batch_size: int, seed: int) -> SliceSettings:
    """The :class:`SliceSettings` of a variant: its ``slicing`` if given, else the checkpoint's target."""
    for name, switch in method_switches(KEY).items():
        if name in variant:
            switch.check(variant[name], f"methods.{KEY} variant key `{name}`")
    slicing = variant.get("slicing")
    return SliceSettings(slicing=slicing, target=None if slicing is not None else float(target_fraction),
                         batch_size=batch_size, seed=seed, **{k: variant[k] for k in VARIANT_KEYS if k in variant})


def run_slicegpt(model_dir: str, calib_path: str, out_dir: str, *, model_name: str, target_fraction: float,
                 variant: dict[str, Any], calibration: dict[str, Any], batch_size: int = 8, seed: int = 0,
                 dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    from transformers import AutoConfig

    settings = settings_for(variant, target_fraction, batch_size=batch_size, seed=seed)
    width = resolve_width(ArchSpec.from_hf_config(AutoConfig.from_pretrained(str(model_dir))), settings)  # fails early
    model, tok = load_model(model_dir, dtype=dtype, device=device)
    ids = load_calibration(calib_path)
    result = slice_model(model, ids, settings)
    assert result.width == width
    name = registry.display_name(KEY)
    label = variant.get("label") or ""
    params = {**settings.to_dict(), "calibration": calibration}
    pruning = {
        "method": name, "variant": label, "params": params, "target_fraction": float(target_fraction),
        "target_pct": target_pct(target_fraction), "removed_layers": 0,
        "sparsity_pct": round(100 * result.param_sparsity, 4), "dense_layers": len(result.record["layers"]),
        "params_before": result.params_dense, "params_after": result.params_sliced,
        "pruning_seconds": result.pruning_seconds, "timing": {"core_s": result.pruning_seconds},
        "slicegpt": result.summary(),
    }
    how = (f"slicing fraction {settings.slicing:g} given (the target {target_fraction:g} only labels the row)"
           if settings.slicing is not None else
           f"width solved from the parameter count for the target {target_fraction:g} by rule {settings.target_rule}")
    notes = [f"Embedding dimension {result.width} of {result.hidden_size} (slicing {result.slicing:.4f}): {how}.",
             f"{pruning['sparsity_pct']:.2f} % of the dense parameters removed ({result.params_dense} -> "
             f"{result.params_sliced}; the shortcut matrices and an untied LM head count).",
             f"Calibration: {ids.shape[0]} windows of {ids.shape[1]} tokens ({calibration.get('dataset')}, seed "
             f"{calibration.get('seed')}); the reference uses 128 WikiText-2 samples of 2048 tokens.",
             f"pruning_seconds {result.pruning_seconds:.3f} (untie, fold, calibration forwards, PCAs, rotations).",
             *card_notes(KEY, settings.to_dict())]
    save_sliced(model, tok, out_dir, result.record, base_model=model_name, params=params, notes=notes,
                title=f"{model_name} — {name}{f' ({label})' if label else ''}, {pruning['sparsity_pct']:.2f}% of "
                      f"parameters removed (target {target_label(target_fraction)})",
                extra_json={"pruning.json": pruning})
    log.info("%s %s: d' = %d of %d, %.2f %% of parameters removed", name, label or "(default)", result.width,
             result.hidden_size, pruning["sparsity_pct"])
    return pruning
