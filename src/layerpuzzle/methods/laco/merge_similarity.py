"""How well an RDSC-merged layer stands in for its group (LaCo Fig. 5b).

For a group of ``g`` consecutive layers ``s .. s+g−1`` of the dense model, the merged
layer ``M = RDSC(layers s..s+g−1)`` (:func:`.rdsc.rdsc_merge`, LaCo Eq. 1) gets the
group's dense input ``h[s]``; its output is compared with the dense output of the
group's last layer, ``h[s+g]``:

    merged_cosine(s) = (1/T) Σ_t cos(M(h[s])_t, h[s+g]_t)
    skip_cosine(s)   = (1/T) Σ_t cos(h[s]_t, h[s+g]_t)        (= 1 − SBI; the group simply removed)

LaCo Fig. 5b: groups of 4 inside layers 10–19 (1-based); we read "each group" as
every window of 4 consecutive layers there (:func:`groups_within`, 0-based starts
9..15) and the cosine as the token mean of Fig. 5a.  Raw layer outputs throughout.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ...engine.block_influence import block_influence
from ...engine.hidden_states import TokenIds, make_runner, real_tokens
from ...models import architecture as arch
from .rdsc import Variant, rdsc_merge


def groups_within(first: int, last: int, size: int = 4) -> list[int]:
    """0-based starts of every window of ``size`` consecutive layers inside ``first..last`` (inclusive, 0-based)."""
    return list(range(first, last - size + 2))


@torch.no_grad()
def merged_layer_cosine(model, ids: TokenIds, starts: Sequence[int], group_size: int = 4,
                        variant: Variant = "described", *, batch_size: int = 8, device=None) -> list[dict[str, Any]]:
    """Rows ``{"start", "last", "group_size", "variant", "merged_cosine", "skip_cosine", "n_tokens"}`` per start.

    The model is not changed (the merged layer is a copy run in place of the group).
    """
    n = arch.num_layers(model)
    bad = [s for s in starts if not (0 <= s and s + group_size <= n)]
    if bad or group_size < 1:
        raise ValueError(f"groups of {group_size} at starts {bad} do not fit a model with {n} layers")
    runner, lengths = make_runner(model, ids, batch_size, device)
    needed = set(starts) | {s + group_size for s in starts}
    states: dict[int, list[torch.Tensor]] = {}
    h = runner.embed()
    for k in range(max(needed) + 1):
        if k in needed:
            states[k] = h
        if k < max(needed):
            h = runner.layer(k, h)
    layers = arch.layers(model)
    rows = []
    for s in starts:
        merged = rdsc_merge([layers[i] for i in range(s, s + group_size)], variant)
        out = real_tokens(runner.layer(s, states[s], module=merged), lengths)
        ref = real_tokens(states[s + group_size], lengths)
        inp = real_tokens(states[s], lengths)
        rows.append({"start": s, "last": s + group_size - 1, "group_size": group_size, "variant": variant,
                     "merged_cosine": 1.0 - block_influence(out, ref), "skip_cosine": 1.0 - block_influence(inp, ref),
                     "n_tokens": int(ref.shape[0])})
    return rows
