"""LLM-Pruner's block-wise width pruning (Ma, Fang & Wang, NeurIPS 2023) on a HF model, in place.

In every layer of ``layers`` (default ``[4, L − 2)``, the README recipe's 4…30 of 32) the
lowest-importance fraction ``ratio`` of the attention KV groups and of the MLP intermediate
channels is removed (local, per-layer ratio; :mod:`.counting`), the importance being the
Taylor group importance of :mod:`.importance` on one set of calibration gradients
(iterative_steps = 1).  The hidden size, head_dim and all other layers are untouched.  The
model's config keeps the unpruned shapes; the record's ``layers`` hold the widths to save
with :func:`layerpuzzle.models.uneven.save_uneven` (kind ``width_pruned``).

``pruning_seconds`` (also ``timing.core_s``) is the computation only — gradients, importance
and surgery — without loading, data or saving (LaCo's Table 4 definition).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import torch

from ...models import architecture as arch
from ...models.width import KIND, attention_geometry, keep_kv_groups, keep_mlp_channels, layer_widths
from .counting import units_to_prune
from .scores import lowest, unit_scores
from .settings import (AGGREGATIONS, DEFAULT_AGGREGATION, DEFAULT_IMPORTANCE, IMPORTANCES, check_choice,
                       check_layers, check_ratio, default_layers)

log = logging.getLogger(__name__)
METHOD = "LLM-Pruner"


def check_calibration(calib_ids) -> torch.Tensor:
    if not isinstance(calib_ids, torch.Tensor) or calib_ids.dim() != 2 or calib_ids.shape[0] < 1 \
            or calib_ids.shape[1] < 2 or calib_ids.dtype != torch.long:
        shape = tuple(calib_ids.shape) if isinstance(calib_ids, torch.Tensor) else type(calib_ids).__name__
        raise ValueError(f"LLM-Pruner `calib_ids`: value of shape {shape} is not allowed; allowed: a (windows, "
                         f"seq_len) tensor of token ids (int64) with at least 1 window of 2 tokens")
    return calib_ids


def plan_counts(model, ratio: float, attention_layers: Sequence[int], mlp_layers: Sequence[int]
                ) -> tuple[dict[int, int], dict[int, int]]:
    """Units to remove per layer; a ratio that would empty a layer is refused."""
    layers = arch.layers(model)
    attn, mlp = {}, {}
    for i in attention_layers:
        g = attention_geometry(layers[i])
        attn[i] = units_to_prune(g["n_kv"], g["head_dim"], ratio)
        if attn[i] >= g["n_kv"]:
            raise ValueError(f"LLM-Pruner `ratio`: value {ratio!r} would remove all {g['n_kv']} KV groups of "
                             f"layer {i}; allowed: a ratio that keeps at least one")
    for i in mlp_layers:
        n = layers[i].mlp.gate_proj.out_features
        mlp[i] = units_to_prune(n, 1, ratio)
        if mlp[i] >= n:
            raise ValueError(f"LLM-Pruner `ratio`: value {ratio!r} would remove all {n} MLP channels of layer {i}; "
                             f"allowed: a ratio that keeps at least one")
    return attn, mlp


def prune_width(model, calib_ids: torch.Tensor, *, ratio: float, layers: Sequence[int] | None = None,
                mlp_layers: Sequence[int] | None = None, importance: str = DEFAULT_IMPORTANCE,
                aggregation: str = DEFAULT_AGGREGATION, batch_size: int | None = None,
                keep_scores: bool = False) -> tuple[Any, dict[str, Any]]:
    """Prune ``model`` in place; return ``(model, record)``.

    ``layers`` / ``mlp_layers``: ``(start, end)``, half-open, of the attention / MLP blocks pruned
    (``mlp_layers`` defaults to ``layers``, ``layers`` to ``(4, L − 2)``).  ``importance``: one of
    ``param_first``, ``param_second``, ``param_mix``; ``aggregation``: ``sum``, ``mean``, ``max``,
    ``prod``, ``first``.  ``batch_size``: windows per forward for the gradient (None = all at
    once).  ``keep_scores`` adds every unit's importance to the record.
    """
    arch.check_supported(model)
    ratio = check_ratio(ratio)
    check_choice("importance", importance, IMPORTANCES)
    check_choice("aggregation", aggregation, AGGREGATIONS)
    check_calibration(calib_ids)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"LLM-Pruner `batch_size`: value {batch_size!r} is not allowed; allowed: None or an int >= 1")
    n_layers = arch.num_layers(model)
    attn_range = check_layers("layers", tuple(layers) if layers is not None else default_layers(n_layers), n_layers)
    mlp_range = check_layers("mlp_layers", tuple(mlp_layers) if mlp_layers is not None else attn_range, n_layers)
    attention_layers, mlp_layer_ids = list(range(*attn_range)), list(range(*mlp_range))
    n_attn, n_mlp = plan_counts(model, ratio, attention_layers, mlp_layer_ids)
    params_before = arch.count_parameters(model)

    t0 = time.perf_counter()
    attn_scores, mlp_scores = unit_scores(model, calib_ids, attention_layers, mlp_layer_ids,
                                          importance=importance, aggregation=aggregation, batch_size=batch_size)
    removed: dict[int, dict[str, list[int]]] = {}
    blocks = arch.layers(model)
    for i in attention_layers:
        gone = lowest(attn_scores[i], n_attn[i])
        keep_kv_groups(blocks[i], sorted(set(range(attn_scores[i].numel())) - set(gone)))
        removed.setdefault(i, {})["kv_groups"] = gone
    for i in mlp_layer_ids:
        gone = lowest(mlp_scores[i], n_mlp[i])
        keep_mlp_channels(blocks[i], sorted(set(range(mlp_scores[i].numel())) - set(gone)))
        removed.setdefault(i, {})["mlp_channels"] = gone
    seconds = time.perf_counter() - t0

    params_after = arch.count_parameters(model)
    record: dict[str, Any] = {
        "kind": KIND,
        "method": METHOD,
        "layers": layer_widths(model),
        "settings": {"ratio": ratio, "importance": importance, "aggregation": aggregation,
                     "attention_layers": list(attn_range), "mlp_layers": list(mlp_range),
                     "pruning": "local (per-layer) ratio", "iterative_steps": 1,
                     "calibration_windows": int(calib_ids.shape[0]), "seq_len": int(calib_ids.shape[1]),
                     "batch_size": batch_size},
        "removed": [{"layer": i, **removed[i]} for i in sorted(removed)],
        "params_before": params_before,
        "params_after": params_after,
        "sparsity": 1.0 - params_after / params_before,
        "pruning_seconds": seconds,
        "timing": {"core_s": seconds},
    }
    if keep_scores:
        record["scores"] = [{"layer": i, **({"kv_groups": attn_scores[i].tolist()} if i in attn_scores else {}),
                             **({"mlp_channels": mlp_scores[i].tolist()} if i in mlp_scores else {})}
                            for i in sorted(set(attn_scores) | set(mlp_scores))]
    log.info("LLM-Pruner %s/%s ratio %.4f: %d -> %d parameters (%.2f %% removed) in %.2f s", importance,
             aggregation, ratio, params_before, params_after, 100 * record["sparsity"], seconds)
    return model, record
