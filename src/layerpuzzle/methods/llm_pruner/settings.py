"""LLM-Pruner's switches and the checks of their values (a bad value names the key, the value and what is allowed)."""

from __future__ import annotations

import math
from numbers import Real
from typing import Sequence

# Taylor importances of LLM-Pruner's `--taylor` (hf_prune.py); `vectorize` is not offered
IMPORTANCES = ("param_first", "param_second", "param_mix")
# how the per-channel terms of a group's member weights are combined (`--grouping_strategy`)
AGGREGATIONS = ("sum", "mean", "max", "prod", "first")
DEFAULT_IMPORTANCE = "param_mix"
DEFAULT_AGGREGATION = "sum"
# the README recipe prunes layers 4 … 29 of LLaMA-7B's 32 (start 4, end 30 exclusive)
FIRST_PRUNED = 4
LAST_KEPT = 2


def default_layers(num_layers: int) -> tuple[int, int]:
    """``[start, end)`` of the pruned layers: ``(4, L − 2)``, the README's 4…30 of 32 at any depth."""
    return FIRST_PRUNED, num_layers - LAST_KEPT


def check_ratio(ratio) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, Real) or not math.isfinite(ratio) or not 0 < ratio < 1:
        raise ValueError(f"LLM-Pruner `ratio`: value {ratio!r} is not allowed; allowed: a number in (0, 1), "
                         f"the fraction of KV groups and of MLP channels removed in each pruned layer")
    return float(ratio)


def check_choice(key: str, value, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"LLM-Pruner `{key}`: value {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def check_layers(key: str, layers, num_layers: int) -> tuple[int, int]:
    """``layers`` = ``(start, end)``, half-open, inside a model of ``num_layers`` layers."""
    ok = (isinstance(layers, Sequence) and len(layers) == 2
          and all(isinstance(x, int) and not isinstance(x, bool) for x in layers))
    if not ok or not 0 <= layers[0] < layers[1] <= num_layers:
        raise ValueError(f"LLM-Pruner `{key}`: value {layers!r} is not allowed for this model of {num_layers} "
                         f"layers; allowed: (start, end) with 0 <= start < end <= {num_layers} "
                         f"(layers start … end − 1 are pruned)")
    return int(layers[0]), int(layers[1])
