"""Removal orders and the one-shot removal of the first n layers (docs/conventions.md, docs/methods/mag_plus.md, docs/methods/taylor_plus.md, docs/methods/shortgpt.md, docs/methods/sleb.md).

A *removal order* lists original (0-based) layer indices, least important first.
Every direct-layer-pruning baseline produces one; a checkpoint at a sparsity
target removes the first ``n`` entries (n from the Table 3 rule,
:func:`layerpuzzle.models.checkpoint.layers_to_remove`).  Greedy orders (SLEB)
are prefixes of each other, so one order serves every target up to its length.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ...models import architecture as arch


@dataclass
class RemovalOrder:
    """A method's removal order and what produced it.

    ``scores[k]`` is the number that put ``layers[k]`` at rank ``k`` (importance
    for Mag+/Taylor+, BI for ShortGPT, the calibration NLL after the removal for
    SLEB; NaN where there is none).  ``protected[k]`` marks layers the "+"
    heuristic moved to the end; ``source[k]`` says where the entry comes from
    (``computed`` or ``published``).
    """

    method: str
    n_layers: int
    layers: list[int]
    scores: list[float]
    protected: list[bool] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # wall time of computing the order (None: not recorded)

    def __post_init__(self) -> None:
        k = len(self.layers)
        self.protected = self.protected or [False] * k
        self.source = self.source or ["computed"] * k
        if not (len(self.scores) == len(self.protected) == len(self.source) == k):
            raise ValueError("layers, scores, protected and source must have the same length")
        if len(set(self.layers)) != k or any(not 0 <= i < self.n_layers for i in self.layers):
            raise ValueError(f"a removal order needs distinct indices in [0, {self.n_layers}), got {self.layers}")

    def first(self, n: int) -> list[int]:
        """The layers removed at a target that removes ``n`` layers."""
        if n > len(self.layers):
            raise ValueError(f"{self.method}: the order has {len(self.layers)} entries, {n} layers are to be removed")
        return list(self.layers[:n])


def ascending_order(scores: Sequence[float]) -> list[int]:
    """Layer indices sorted by score, smallest (least important) first; ties keep index order."""
    return [int(i) for i in np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")]


def protected_layers(n_layers: int, first: int = 4, last: int = 2) -> set[int]:
    """The layers the "+" heuristic never removes: the first ``first`` and the last ``last``."""
    return set(range(min(first, n_layers))) | set(range(max(n_layers - last, 0), n_layers))


def apply_plus_heuristic(order: Sequence[int], n_layers: int, first: int = 4,
                         last: int = 2) -> tuple[list[int], list[bool]]:
    """Move the protected layers to the end of ``order`` (keeping both parts' relative order).

    shortened-llm ``block_prune.py`` drops layers 0-3 and L-2, L-1 from the
    candidates ("+" = keep the first four and last two blocks); moving them to
    the end is the same at every sparsity that leaves them in place and keeps
    the order a permutation.  Returns the new order and the protected flags.
    """
    keep = protected_layers(n_layers, first, last)
    head = [int(i) for i in order if i not in keep]
    tail = [int(i) for i in order if i in keep]
    return head + tail, [False] * len(head) + [True] * len(tail)


def ranked_order(method: str, scores: Sequence[float], *, plus_heuristic: bool,
                 info: dict[str, Any] | None = None) -> RemovalOrder:
    """One-shot order of a score-per-layer method: ascending scores, optionally with "+"."""
    scores = [float(s) for s in scores]
    order = ascending_order(scores)
    protected = [False] * len(order)
    if plus_heuristic:
        order, protected = apply_plus_heuristic(order, len(scores))
    return RemovalOrder(method=method, n_layers=len(scores), layers=order, scores=[scores[i] for i in order],
                        protected=protected, info=dict(info or {}))


def remove_layers(model, removed: Sequence[int]):
    """Drop the ``removed`` original layers from ``model`` (in place).

    Returns ``(model, dense_config, layer_groups)``: the config before the
    removal (for :func:`~layerpuzzle.models.checkpoint.save_pruned`) and, per
    kept layer, the one original layer it is.
    """
    dense_config = copy.deepcopy(model.config)
    n = arch.num_layers(model)
    kept = [i for i in range(n) if i not in set(int(r) for r in removed)]
    arch.drop_layers(model, removed)
    return model, dense_config, [[i] for i in kept]
