"""CoMe-P: CoMe with the merge ratio searched on the calibration loss (paper Alg. 2; docs/methods/come_p.md).

Windows are always 2 layers, chosen by SBI as in CoMe.  For the window
``(l*, l*+1)`` every candidate ``r ∈ {i/n : i = 0..n}`` (n = ``granularity``)
is tried (``ratio_grid="released"``: the released code's
``np.arange(0, 1 + 1/n, 1/n)``, whose floats ``i·(1/n)`` differ from ``i/n``
in the last bit for some ``i``; on 40 KV heads candidates 12, 14, 17 and 19 of
n = 20 then keep one head more of the lower layer, see docs/methods/come_p.md): merge with ratios ``[r, 1-r]`` (``r`` = share of the lower layer),
compute the summed calibration NLL (mean CE per window × S, the released
``get_loss``; ``nll="released"`` also computes the CE in the model dtype per
batch as that code does), and keep the argmin (first on ties).  ``p`` and ``ρ`` are not
used.  ``r = 1`` keeps no unit of the upper layer: that is dropping it, except
that the norm weights are still averaged.

Only layers ``l*..`` depend on the candidate, so each candidate re-runs the
model from the cached input ``h[l*]`` (incremental mode), or from the
embeddings (``recompute="full"``, the released code's deep-copy-and-evaluate).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
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
    ratio_grid: str = "exact"  # exact: i/n | released: np.arange(0, 1 + 1/n, 1/n)
    nll: str = "fp32"  # fp32: CE on fp32 logits | released: the code's get_loss, CE in the model dtype

    def check(self) -> None:
        super().check()
        if int(self.layers_per_merge) != 2:
            raise ValueError(f"CoMe-P merges 2 layers per iteration (Alg. 2), "
                             f"got layers_per_merge={self.layers_per_merge}")
        if int(self.granularity) < 1:
            raise ValueError(f"granularity must be >= 1, got {self.granularity}")
        candidate_ratios(self.granularity, self.ratio_grid)  # raises on a bad grid before any work
        if self.nll not in ("fp32", "released"):
            raise ValueError(f"nll={self.nll!r} is not allowed; allowed: fp32, released")


RATIO_GRIDS = ("exact", "released")


def candidate_ratios(granularity: int, grid: str = "exact") -> list[float]:
    """Γ (the lower layer's share), ascending: ``i/n`` (exact) or the released ``np.arange`` floats.

    ``np.arange(0, 1 + 1/n, 1/n)`` holds ``i·(1/n)``; for some n (6, 9, 30, ...) it also
    overshoots to an (n+2)-th value above 1, a negative share the merge cannot use: refused.
    """
    n = int(granularity)
    if grid == "exact":
        return [i / n for i in range(n + 1)]
    if grid != "released":
        raise ValueError(f"ratio_grid={grid!r} is not allowed; allowed: {', '.join(RATIO_GRIDS)}")
    values = [float(r) for r in np.arange(0, 1 + 1 / n, 1 / n)]
    if len(values) != n + 1 or values[-1] > 1.0:
        raise ValueError(f"ratio_grid='released' with granularity={n}: np.arange gives {len(values)} candidates "
                         f"up to {values[-1]!r} (a share above 1); choose another granularity or ratio_grid='exact'")
    return values


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
                  hidden=None, nll: str = "fp32") -> float:
    """Summed calibration NLL of the current model with its window merged at ratios ``[r, 1-r]``.

    ``hidden`` = ``h[from_depth]`` of the current model (``from_depth <= l*``; None = from the embeddings).
    """
    ffn = [ctx.scores.ffn[l] for l in (ctx.start, ctx.stop)]
    kv = [ctx.scores.kv[l] for l in (ctx.start, ctx.stop)]
    with tentative_merge(ctx.model, ctx.start, ctx.stop, [r, 1.0 - r], ffn, kv,
                         query_mapping=query_mapping, qk_norm=qk_norm):
        return ctx.runner.nll(hidden, start=from_depth, released=nll == "released")


def nll_search_rule(settings: ComePSettings) -> RatioRule:
    """Alg. 2 lines: try every r of Γ, keep the lowest NLL (first on ties); record all candidates."""

    def rule(ctx: WindowContext) -> RatioChoice:
        rows, best = [], None
        from_depth, hidden = candidate_input(ctx)
        for i, r in enumerate(candidate_ratios(settings.granularity, settings.ratio_grid)):
            nll = candidate_nll(ctx, r, query_mapping=settings.query_mapping, qk_norm=settings.qk_norm,
                                from_depth=from_depth, hidden=hidden, nll=settings.nll)
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
