"""CoMe-P: CoMe with the merge ratio searched on the calibration loss (paper Alg. 2; come.md §6).

Windows are always 2 layers, chosen by SBI as in CoMe.  For the window
``(l*, l*+1)`` every candidate ``r ∈ {i/n : i = 0..n}`` (n = ``granularity``)
is tried: merge with ratios ``[r, 1-r]`` (``r`` = share of the lower layer),
compute the summed calibration NLL (mean CE per window × S, the released
``get_loss``), and keep the argmin (first on ties).  ``p`` and ``ρ`` are not
used.  ``r = 1`` keeps no unit of the upper layer: that is dropping it, except
that the norm weights are still averaged.

Only layers ``l*..`` depend on the candidate, so each candidate re-runs the
model from the cached input ``h[l*]`` (incremental mode), or from the
embeddings (``recompute="full"``, the released code's deep-copy-and-evaluate).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ...models import architecture as arch
from .concat_merge import merge_window
from .progressive import (
    Execution,
    LoopSettings,
    MergeResult,
    RatioChoice,
    RatioRule,
    WindowContext,
    progressive_merge,
)


@dataclass(frozen=True)
class ComePSettings(LoopSettings):
    """CoMe-P: 2-layer windows, ``granularity`` + 1 candidate ratios."""

    granularity: int = 20

    def check(self) -> None:
        super().check()
        if int(self.layers_per_merge) != 2:
            raise ValueError(f"CoMe-P merges 2 layers per iteration (Alg. 2), "
                             f"got layers_per_merge={self.layers_per_merge}")
        if int(self.granularity) < 1:
            raise ValueError(f"granularity must be >= 1, got {self.granularity}")


def candidate_ratios(granularity: int) -> list[float]:
    """Γ = {i/n : i = 0..n} (the lower layer's share), ascending."""
    n = int(granularity)
    return [i / n for i in range(n + 1)]


@contextmanager
def tentative_merge(model, start: int, stop: int, ratios, ffn, kv, **switches):
    """Merge ``start..stop`` for the duration of the block, then restore the original layers and config."""
    old_layers = list(arch.layers(model))
    types = getattr(model.config, "layer_types", None)
    old_types = None if types is None else list(types)
    merge_window(model, start, stop, ratios, ffn, kv, **switches)
    try:
        yield model
    finally:
        arch.replace_layers(model, old_layers, old_types)


def candidate_input(ctx: WindowContext):
    """(depth, h[depth]) a candidate is run from: ``h[l*]`` (incremental) or the embeddings (full)."""
    if ctx.scorer.incremental:
        return ctx.start, ctx.scorer.hidden(ctx.start)
    return 0, None


def candidate_nll(ctx: WindowContext, r: float, *, query_mapping: str, qk_norm: str, from_depth: int = 0,
                  hidden=None) -> float:
    """Summed calibration NLL of the current model with its window merged at ratios ``[r, 1-r]``.

    ``hidden`` = ``h[from_depth]`` of the current model (``from_depth <= l*``; None = from the embeddings).
    """
    ffn = [ctx.scores.ffn[l] for l in (ctx.start, ctx.stop)]
    kv = [ctx.scores.kv[l] for l in (ctx.start, ctx.stop)]
    with tentative_merge(ctx.model, ctx.start, ctx.stop, [r, 1.0 - r], ffn, kv,
                         query_mapping=query_mapping, qk_norm=qk_norm):
        return ctx.runner.nll(hidden, start=from_depth)


def nll_search_rule(settings: ComePSettings) -> RatioRule:
    """Alg. 2 lines: try every r of Γ, keep the lowest NLL (first on ties); record all candidates."""

    def rule(ctx: WindowContext) -> RatioChoice:
        rows, best = [], None
        from_depth, hidden = candidate_input(ctx)
        for i, r in enumerate(candidate_ratios(settings.granularity)):
            nll = candidate_nll(ctx, r, query_mapping=settings.query_mapping, qk_norm=settings.qk_norm,
                                from_depth=from_depth, hidden=hidden)
            rows.append({"candidate": i, "r": r, "nll": nll})
            if best is None or nll < rows[best]["nll"]:
                best = i
        for row in rows:
            row["chosen"] = row["candidate"] == best
        r = rows[best]["r"]
        return RatioChoice(ratios=[r, 1.0 - r], threshold=None, candidates=rows)

    return rule


def come_p(model, input_ids: torch.Tensor, n_remove: int, settings: ComePSettings | None = None,
           execution: Execution | None = None) -> MergeResult:
    """CoMe-P (Alg. 2): progressive 2-layer merging with the ratio chosen by calibration NLL."""
    settings = settings or ComePSettings()
    return progressive_merge(model, input_ids, n_remove, settings, nll_search_rule(settings), execution)
