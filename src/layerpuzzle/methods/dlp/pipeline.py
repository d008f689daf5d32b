"""The direct-layer-pruning jobs of the workflow: compute an order, cut a checkpoint from it.

Rules ``dlp_order_<key>`` call :func:`compute_order` once per model,
calibration set and variant; rule ``dlp_checkpoint`` calls
:func:`checkpoint_from_order` for every sparsity target (the first ``n`` layers
of the order, n from the Table 3 rule).  SLEB's greedy order is computed for
the largest target the config asks for; the orders of smaller targets are its
prefixes.  Method keys (config ``methods.<key>``) and the names the tables show
are in :data:`DISPLAY_NAMES`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch

from ...data.calibration import calibration_info
from ...engine.runner import LayerwiseRunner
from ...models import architecture as arch
from ...models.checkpoint import Target, layers_to_remove, save_pruned
from .magnitude import magnitude_order
from .order_io import write_frame, write_order
from .removal import RemovalOrder, remove_layers
from .reverse import reverse_order
from .shortgpt import block_influence, shortgpt_order
from .sleb import sleb_order
from .taylor import taylor_order
from .. import registry
from ..switches import card_notes

log = logging.getLogger(__name__)

DISPLAY_NAMES = {k: registry.display_name(k) for k in ("mag_plus", "taylor_plus", "shortgpt", "sleb", "reverse")}
DATA_FREE = tuple(k for k in DISPLAY_NAMES if registry.entry(k).data_free)


@dataclass
class OrderResult:
    order: RemovalOrder
    candidates: pd.DataFrame | None = None  # SLEB only
    facts: dict[str, Any] = field(default_factory=dict)


def calibration_metadata(path: str | Path) -> dict[str, str]:
    """The metadata the calibration_set rule stored in the safetensors header."""
    return calibration_info(path)


def calibration_notes(meta: dict[str, str]) -> list[str]:
    """Human-readable caveats of a calibration set (e.g. 'PG19 substitute')."""
    notes = []
    if str(meta.get("source_substitute", "")).lower() == "true":
        notes.append(f"Calibration data: {meta.get('source_note', 'PG19 substitute')} "
                     f"(the paper used PG19 train books, CoMe Table 5).")
    elif meta.get("source_note"):
        notes.append(f"Calibration: {meta['source_note']}.")
    return notes


def is_substitute(meta: dict[str, str]) -> bool:
    return str(meta.get("source_substitute", "")).lower() == "true"


def steps_needed(dense_config, fractions: Sequence[Target]) -> int:
    """Layers removed at the largest of ``fractions`` (Table 3 rule; ``{"layers": k}`` removes k): the length a
    greedy order needs."""
    return max(layers_to_remove(dense_config, f) for f in fractions)


def compute_order(key: str, model, *, variant: dict[str, Any], settings: dict[str, Any] | None = None,
                  calib: torch.Tensor | None = None, calib_meta: dict[str, str] | None = None,
                  fractions: Sequence[float] = (), published: Sequence[int] | None = None) -> OrderResult:
    """The removal order of method ``key`` for ``model`` (variant and method-level settings as configured).

    ``calib``: the calibration windows (W, S) of data-dependent methods;
    ``fractions``: the targets the order must serve (SLEB's number of steps);
    ``published``: ShortGPT's published prefix for this model (CoMe App. B.1).
    """
    settings = dict(settings or {})
    calib_meta = dict(calib_meta or {})
    device = next(model.parameters()).device
    if key not in DATA_FREE:
        if calib is None:
            raise ValueError(f"{DISPLAY_NAMES[key]} needs calibration windows")
        if settings.get("max_windows"):
            calib = calib[: int(settings["max_windows"])]
    facts: dict[str, Any] = {}
    candidates = None
    t0 = time.perf_counter()  # LaCo Table 4: the order's computation only
    if key == "mag_plus":
        order = magnitude_order(model, plus_heuristic=bool(variant.get("plus_heuristic", True)),
                                reduction=variant.get("reduction", "fp32"))
    elif key == "reverse":
        order = reverse_order(arch.num_layers(model), keep_last=int(variant.get("keep_last", 0)))
    elif key == "taylor_plus":
        order = taylor_order(model, calib, batch_size=int(settings.get("batch_size", 1)),
                             accumulate=variant.get("accumulate", "signed_sum"),
                             plus_heuristic=bool(variant.get("plus_heuristic", True)))
    elif key == "shortgpt":
        runner = LayerwiseRunner(model, calib, batch_size=int(settings.get("batch_size", 1)), device=device)
        llo = variant.get("last_layer_output", "raw")
        est = variant.get("bi_estimator", "cosine_mean")
        bi = block_influence(runner, last_layer_output=llo, estimator=est)
        score = ("BI = 1 - mean cos (engine estimator cosine_mean)" if est == "cosine_mean" else
                 "BI = sum (1 - clamp(cos, 0, 1)) / L (engine estimator released)")
        info = {"score": score, "last_layer_output": llo, "windows": int(calib.shape[0]),
                "seq_len": int(calib.shape[1])}
        if est != "cosine_mean":  # the default's record stays as it was
            info["bi_estimator"] = est
        order = shortgpt_order(bi, published=published, info=info)
        facts["layer_forwards"] = runner.layer_forwards
    elif key == "sleb":
        n = steps_needed(model.config, fractions)
        runner = LayerwiseRunner(model, calib, batch_size=int(settings.get("batch_size", 1)), device=device)
        res = sleb_order(runner, n, early_barrier=int(variant.get("early_barrier", 1)),
                         latter_barrier=int(variant.get("latter_barrier", 1)), nll=variant.get("nll", "fp32"))
        order, candidates = res.order, res.candidates
        facts["layer_forwards"] = res.layer_forwards
        facts["candidate_evaluations"] = int(len(candidates))
    else:
        raise ValueError(f"unknown DLP method {key!r}; allowed: {', '.join(DISPLAY_NAMES)}")
    order.seconds = time.perf_counter() - t0
    order.info.update({"key": key, "variant": dict(variant), "settings": settings,
                       "calibration": calib_meta.get("id", "data-free" if key in DATA_FREE else None),
                       "calibration_substitute": is_substitute(calib_meta),
                       "notes": calibration_notes(calib_meta)})
    if key not in DATA_FREE:
        order.info["calibration_windows_used"] = int(calib.shape[0])
    facts.update(order=order.layers, n_layers=order.n_layers)
    return OrderResult(order=order, candidates=candidates, facts=facts)


def save_order(result: OrderResult, order_path: str | Path, candidates_path: str | Path | None = None) -> None:
    write_order(result.order, order_path)
    if candidates_path is not None:
        if result.candidates is None:
            raise ValueError("this method logs no candidates")
        write_frame(result.candidates, candidates_path, {"method": result.order.method})


def variant_display(label: str, order: RemovalOrder) -> str:
    """The variant shown in the results table: the configured label, plus 'PG19 substitute' when so."""
    parts = [label] if label else []
    if order.info.get("calibration_substitute"):
        parts.append("PG19 substitute")
    return ", ".join(parts)


def checkpoint_from_order(model, tokenizer, order: RemovalOrder, out_dir: str | Path, *, target_fraction: Target,
                          base_model: str, label: str = "", params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Remove the first n layers of ``order`` (n by the Table 3 rule, or k of ``{"layers": k}``) and save the
    pruned checkpoint."""
    n = layers_to_remove(model.config, target_fraction)
    removed = order.first(n)
    t0 = time.perf_counter()
    model, dense_config, groups = remove_layers(model, removed)
    cut_s = time.perf_counter() - t0
    # LaCo Table 4's pruning time: computing the order (its own job; a greedy order is computed once for the
    # largest target) plus cutting the layers; an order written before timings were recorded counts as 0
    order_s = float(order.seconds or 0.0)
    info = order.info
    params = {**(params or {}), "removed_layers": removed, "calibration": info.get("calibration")}
    notes = [f"Removal order ({order.method}, original 0-based indices, least important first): "
             f"{', '.join(map(str, order.layers))}; the first {n} are removed."]
    if any(s == "published" for s in order.source):
        k = sum(s == "published" for s in order.source)
        notes.append(f"The first {k} entries of the order are the ShortGPT paper's published order (CoMe App. B.1).")
    notes += list(info.get("notes") or [])
    notes += card_notes(registry.key_of(order.method), params)  # the variant's switches in words
    if info.get("notes"):
        params["calibration_notes"] = list(info["notes"])
    summary = (f"{order.method}: layers {', '.join(map(str, sorted(removed)))} of {order.n_layers} removed "
               f"(one-shot from the method's removal order; docs/methods/README.md).")
    save_pruned(model, tokenizer, out_dir, dense_config=dense_config, base_model=base_model, method=order.method,
                variant=variant_display(label, order), params=params, target_fraction=target_fraction,
                layer_groups=groups, summary=summary, notes=notes,
                extra_json={"removal_order.json": {"method": order.method, "order": order.layers,
                                                   "scores": [None if math.isnan(x) else x for x in order.scores], "source": order.source,
                                                   "protected": order.protected, "info": info}},
                pruning_seconds=order_s + cut_s, timing={"order_s": order_s, "cut_s": cut_s})
    return {"removed": removed, "n_removed": n}

