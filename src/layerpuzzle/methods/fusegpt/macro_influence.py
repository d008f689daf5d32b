"""Macro Influence (FuseGPT; CoMe App. A; docs/methods/fusegpt_mi.md).

For the *current* stack of n layers and the calibration windows,

    MI_i = 1 − E_{x,t} cos( H^(n)(x)_t , H^(n)_{∖i}(x)_t )

where H^(n) is the last layer's output (before the final norm) and H^(n)_{∖i}
the same with layer i skipped; the cosine is per token over the hidden
dimension, averaged over all tokens and windows.  The layer with the lowest MI
(highest similarity) is the one FuseGPT removes next; no layer is protected.

``precision`` (the ``mi_precision`` switch):

* ``exact`` (default) — fp32 per-token cosines, summed in fp64;
* ``bfloat16`` — as the released ``full_importance_eval`` computes them on its
  bf16 model: ``F.cosine_similarity`` of the two states cast to bf16 (a bf16
  cosine per token) and one ``.mean()`` over all tokens, rounded to bf16.  Near
  1 bf16 has a spacing of 2^-8, so layers whose similarities differ by less tie,
  and the released ``argsort(sim, descending=True)[0]`` (a stable sort) takes the
  lowest index among them, which :meth:`MacroInfluence.least_important` also does.

Cost: the inputs h[i] of every layer are cached in one pass, and candidate i
re-runs only layers i+1..n−1 from h[i]: n(n−1)/2 + n layer forwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...engine.block_influence import token_cosine
from ...engine.runner import Hidden, LayerwiseRunner, to_device
from ...models import architecture as arch
from .switches import MI_PRECISION


@dataclass
class MacroInfluence:
    scores: torch.Tensor       # (n,) float64, MI_i
    similarity: torch.Tensor   # (n,) float64, 1 − MI_i
    layer_forwards: int

    def least_important(self) -> int:
        """Index of the lowest MI (the lowest index among exact ties)."""
        return int(torch.nonzero(self.scores == self.scores.min())[0, 0])


def mean_token_cosine(a: Hidden, b: Hidden) -> float:
    """E_t cos(a_t, b_t) over all tokens of all batches (fp32 cosines, fp64 sum)."""
    total, count = 0.0, 0
    for x, y in zip(a, b):
        c = token_cosine(x, y.to(x.device)).double()
        total += float(c.sum())
        count += c.numel()
    return total / count


MI_PRECISIONS = MI_PRECISION.allowed


def check_precision(precision: str) -> str:
    """``precision`` when it is a value of the declared switch ``mi_precision`` (methods/fusegpt/switches.py)."""
    return MI_PRECISION.check(precision, "mi_precision")


def bf16_mean_token_cosine(a: Hidden, b: Hidden) -> float:
    """The released score: bf16 cosines per token, one mean over all tokens, rounded to bf16."""
    cos = [F.cosine_similarity(x.to(torch.bfloat16), y.to(x.device, torch.bfloat16), dim=-1).flatten()
           for x, y in zip(a, b)]
    return float(torch.cat(cos).mean())


@torch.no_grad()
def macro_influence(runner: LayerwiseRunner, hidden: Hidden | None = None, *, state_device=None,
                    precision: str = "exact") -> MacroInfluence:
    """MI of every layer of ``runner.model`` on the runner's windows.

    ``hidden`` is the embedding output (computed when None); ``state_device``
    holds the cached layer inputs (default: the runner's device; "cpu" offloads);
    ``precision`` is ``exact`` or the released ``bfloat16`` (module docstring).
    """
    similarity = mean_token_cosine if check_precision(precision) == "exact" else bf16_mean_token_cosine
    before = runner.layer_forwards
    n = arch.num_layers(runner.model)
    h = runner.embed() if hidden is None else hidden
    keep = (lambda x: to_device(x, state_device)) if state_device is not None else (lambda x: x)
    states = [keep(h)]
    for i in range(n):
        h = runner.layer(i, h)
        states.append(keep(h))
    full = states[n]
    sims = []
    for i in range(n):
        h = to_device(states[i], runner.device)
        for j in range(i + 1, n):
            h = runner.layer(j, h)
        sims.append(similarity(full, h))
    sim = torch.tensor(sims, dtype=torch.float64)
    return MacroInfluence(scores=1.0 - sim, similarity=sim, layer_forwards=runner.layer_forwards - before)
