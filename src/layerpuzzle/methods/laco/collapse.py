"""The Layer-Collapse search (LaCo paper Alg. 1; notebook ``while`` loop; docs/methods/laco.md).

With C layers merged per operation, layer range [L, H], minimum interval I and
threshold T (CoMe Table 6), the notebook loop is::

    lay = H - C
    while lay >= L:
        candidate = merge(current, base=lay, m=min(C-1, n-lay-1))   # layers lay..lay+m -> one
        if sim(dense, candidate) > T:
            current = candidate; lay -= I
            if lay >= n_current: lay = n_current - 1 - C           # the notebook's reset rule
        else:
            lay -= 1

``layer_bounds`` maps Table 6's ``H`` and ``L`` onto the notebook's 0-based
``HIGHEST_LAY`` / ``LOWEST_LAY`` (CoMe's mapping is silent):

* ``literal`` (default) — used as they are: ``H`` = number of layers makes the
  first candidate the top C layers, and layer 0 is never a base;
* ``one_based`` — read as the LaCo paper's 1-based values, so the notebook's are
  ``H − 1`` and ``L − 1`` (its own defaults for LLaMA-2-13B are ``HIGHEST_LAY = 39``,
  ``LOWEST_LAY = 0``): the first group stops one layer below the top, and layer 0
  can be a base.

``H = None`` means the number of layers (before the mapping).

The number of removed layers is an outcome of T.  ``stop_at_target`` (our
addition) makes it exact: every merge collapses at most the layers still to be
removed and the search stops when the target is reached; if a pass ends short,
T is lowered in steps of ``threshold_step`` and the search is re-run from the
dense model.  A lower T that keeps every decision of the pass (T ≥ the largest
rejected similarity) gives the same pass again, so those steps are skipped: the
next T is the first grid value ``T − k·step`` below the best rejected candidate.
If no candidate was rejected the shortfall cannot be closed by T and is reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from ...models import architecture as arch
from .rdsc import Variant, rdsc_merge
from .similarity import SentenceProbe

LAYER_BOUNDS = ("literal", "one_based")
# How a group becomes one layer: RDSC (LaCo Eq. 1) or, for LaCo Table 15's "drop" (m = 1 ablation), the base
# layer alone (the layers above it are removed, nothing is merged into it).
MERGE_MODES = ("rdsc", "drop")

@dataclass(frozen=True)
class CollapseParams:
    """Search hyperparameters: C, L, H, I, T (CoMe Table 6) and the target rule."""

    merge_layers: int = 4            # C: layers collapsed into one per merge
    lowest_layer: int = 1            # L: lowest base layer (0-based unless layer_bounds is one_based)
    highest_layer: int | None = None  # H: lay starts at H - C (None = number of layers)
    interval: int = 2                # I: after a merge, lay -= I
    threshold: float = 0.65          # T: accept when similarity > T
    stop_at_target: bool = True
    threshold_step: float = 0.05
    layer_bounds: str = "literal"    # literal | one_based (H − 1, L − 1; the notebook's numbering)

    def __post_init__(self):
        if self.layer_bounds not in LAYER_BOUNDS:
            raise ValueError(f"layer_bounds {self.layer_bounds!r}; allowed: {', '.join(LAYER_BOUNDS)}")
        if self.layer_bounds == "one_based" and self.lowest_layer < 1:
            raise ValueError(f"lowest_layer (L) must be >= 1 with layer_bounds one_based (1-based), "
                             f"got {self.lowest_layer}")
        if self.merge_layers < 2:
            raise ValueError(f"merge_layers (C) must be >= 2, got {self.merge_layers}")
        if self.interval < 1:
            raise ValueError(f"interval (I) must be >= 1, got {self.interval}")
        if self.threshold_step <= 0:
            raise ValueError(f"threshold_step must be > 0, got {self.threshold_step}")


    def notebook_bounds(self, n_layers: int) -> tuple[int, int]:
        """(LOWEST_LAY, HIGHEST_LAY) of the notebook loop for a stack of ``n_layers``."""
        high = n_layers if self.highest_layer is None else self.highest_layer
        shift = 1 if self.layer_bounds == "one_based" else 0
        return self.lowest_layer - shift, high - shift


@dataclass
class CollapseResult:
    groups: list[list[int]]          # original layers each kept layer stands for
    threshold_used: float | None  # None for a fixed plan (no search)
    passes: int
    removed: int
    target_removed: int | None
    shortfall: int
    candidates: list[dict[str, Any]] = field(default_factory=list)
    layer_forwards: int = 0

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("candidates")
        return d


@dataclass
class _Stack:
    layers: list[nn.Module]
    groups: list[list[int]]

    def entries(self) -> list[tuple[nn.Module, int]]:
        return [(m, g[0]) for m, g in zip(self.layers, self.groups)]


def collapse_group(layers: Sequence[nn.Module], variant: Variant = "described", merge: str = "rdsc") -> nn.Module:
    """One layer standing for ``layers``: :func:`.rdsc.rdsc_merge` (``rdsc``) or a copy of the base (``drop``)."""
    if merge not in MERGE_MODES:
        raise ValueError(f"LaCo variant key `merge`: value {merge!r} is not allowed; allowed: {', '.join(MERGE_MODES)}")
    return rdsc_merge(layers if merge == "rdsc" else layers[:1], variant)


def _search_pass(probe: SentenceProbe, dense: _Stack, reference, params: CollapseParams, threshold: float,
                 variant: Variant, target: int | None, pass_no: int, log: list[dict],
                 merge: str = "rdsc") -> tuple[_Stack, float | None]:
    """One notebook pass at ``threshold``; returns the stack and the best rejected similarity."""
    stack = _Stack(list(dense.layers), [list(g) for g in dense.groups])
    inputs = probe.layer_inputs(stack.entries())
    n0 = len(dense.layers)
    C = params.merge_layers
    lowest, H = params.notebook_bounds(n0)
    lay = H - C
    best_rejected: float | None = None
    while lay >= lowest:
        removed = n0 - len(stack.layers)
        if target is not None and removed >= target:
            break
        n = len(stack.layers)
        m = min(C - 1, n - lay - 1)
        if target is not None:
            m = min(m, target - removed)
        if lay >= n or m <= 0:
            # the notebook merges nothing here: the copy equals the current model, sim = 1 > T
            accepted, sim, merged = True, 1.0, None
        else:
            merged = collapse_group(stack.layers[lay:lay + m + 1], variant, merge)
            cand = _Stack(stack.layers[:lay] + [merged] + stack.layers[lay + m + 1:],
                          stack.groups[:lay] + [sorted(sum(stack.groups[lay:lay + m + 1], []))]
                          + stack.groups[lay + m + 1:])
            sim = probe.similarity(reference, probe.outputs(cand.entries(), start=lay, inputs=inputs))
            accepted = sim > threshold
        log.append({"pass": pass_no, "threshold": threshold, "base": lay, "merged_current": list(range(lay, lay + m + 1)),
                    "merged_original": sorted(sum(stack.groups[lay:lay + m + 1], [])) if merged is not None else [],
                    "similarity": sim, "accepted": accepted})
        if accepted:
            if merged is not None:
                stack = cand
                inputs = probe.layer_inputs(stack.entries())
            lay -= params.interval
            if lay >= len(stack.layers):
                lay = len(stack.layers) - 1 - C
        else:
            best_rejected = sim if best_rejected is None else max(best_rejected, sim)
            lay -= 1
    return stack, best_rejected


def next_threshold(threshold: float, best_rejected: float, step: float) -> float:
    """The first value ``threshold − k·step`` (k ≥ 1) strictly below ``best_rejected``."""
    k = max(1, math.floor((threshold - best_rejected) / step + 1e-9) + 1)
    return round(threshold - k * step, 10)


@torch.no_grad()
def layer_collapse(model, tokenizer, sentences: Sequence[str], params: CollapseParams, *,
                   variant: Variant = "described", target_removed: int | None = None, merge: str = "rdsc",
                   device=None) -> CollapseResult:
    """Run the LaCo search on ``model`` and install the result in it (in place).

    ``target_removed`` is used only with ``params.stop_at_target``; ``merge`` is ``rdsc`` (Eq. 1) or ``drop``.
    """
    if merge not in MERGE_MODES:
        raise ValueError(f"LaCo variant key `merge`: value {merge!r} is not allowed; allowed: {', '.join(MERGE_MODES)}")
    arch.check_supported(model)
    target = target_removed if params.stop_at_target else None
    if params.stop_at_target and target_removed is None:
        raise ValueError("stop_at_target needs target_removed")
    probe = SentenceProbe(model, tokenizer, sentences, device=device)
    n0 = arch.num_layers(model)
    dense = _Stack(list(arch.layers(model)), [[i] for i in range(n0)])
    reference = probe.outputs(dense.entries())
    log: list[dict] = []
    threshold, passes = float(params.threshold), 0
    while True:
        passes += 1
        stack, best_rejected = _search_pass(probe, dense, reference, params, threshold, variant, target, passes, log,
                                             merge)
        removed = n0 - len(stack.layers)
        if target is None or removed >= target or best_rejected is None:
            break
        threshold = next_threshold(threshold, best_rejected, params.threshold_step)
    types = getattr(model.config, "layer_types", None)
    arch.replace_layers(model, stack.layers, [types[g[0]] for g in stack.groups] if types is not None else None)
    return CollapseResult(
        groups=stack.groups, threshold_used=threshold, passes=passes, removed=removed,
        target_removed=target_removed, shortfall=max(0, (target or 0) - removed),
        candidates=log, layer_forwards=probe.layer_forwards,
    )


@torch.no_grad()
def fixed_collapse(model, tokenizer, sentences: Sequence[str], groups: Sequence[Sequence[int]], *,
                   variant: Variant = "described", merge: str = "rdsc", device=None) -> CollapseResult:
    """Collapse the given 0-based ``groups`` (a fixed merge plan, LaCo Table 16's rule-based row) without a
    search, install the result in ``model`` and record the final-state similarity to the dense model on
    ``sentences`` (the criterion LaCo's search thresholds, reported, never used)."""
    arch.check_supported(model)
    n0 = arch.num_layers(model)
    flat = [i for g in groups for i in g]
    if flat != list(range(n0)):
        raise ValueError(f"groups {list(map(list, groups))} do not cover layers 0..{n0 - 1} once, in order")
    probe = SentenceProbe(model, tokenizer, sentences, device=device)
    dense = _Stack(list(arch.layers(model)), [[i] for i in range(n0)])
    reference = probe.outputs(dense.entries())
    stack = _Stack([collapse_group([dense.layers[i] for i in g], variant, merge) if len(g) > 1 else dense.layers[g[0]]
                    for g in groups], [list(g) for g in groups])
    sim = probe.similarity(reference, probe.outputs(stack.entries()))
    types = getattr(model.config, "layer_types", None)
    arch.replace_layers(model, stack.layers, [types[g[0]] for g in stack.groups] if types is not None else None)
    removed = n0 - len(stack.layers)
    log = [{"pass": 1, "threshold": None, "merged_original": list(g), "similarity": sim, "accepted": True}
           for g in groups if len(g) > 1]
    return CollapseResult(groups=stack.groups, threshold_used=None, passes=0, removed=removed,
                          target_removed=None, shortfall=0, candidates=log, layer_forwards=probe.layer_forwards)
