"""SLEB: iterative greedy block removal by calibration NLL (docs/methods/sleb.md).

Step i: for every alive block at alive position j ∈ [early_barrier, m - latter_barrier)
(m = alive blocks; defaults 1/1 keep the first and last alive block), remove it
and compute the calibration loss

    NLL = Σ_windows mean_t CE(window) · S          (SLEB ``get_loss``; runner.window_nll)

then remove for good the block with the lowest NLL (ties: the first, as the
code's strict ``<``).  ``nll="released"`` computes it as the CoMe code's
``get_loss`` does (:meth:`LayerwiseRunner.released_nll`: the cross-entropy of
each batch in the model dtype, so in bf16 near-equal candidates tie);
the default computes the cross-entropy on fp32 logits.  The order lists original indices in removal order, so
the orders of smaller targets are prefixes of it.

Incremental evaluation: removing alive block j leaves the residual stream
*entering* it unchanged, and a removed block passes its input through.  The
inputs of every alive block are cached once per step; candidate j re-runs only
the blocks after it from the cached input of block j.  After a removal only the
cached inputs after the removed position are recomputed.  This costs
Σ_j (m-1-j) layer forwards per step instead of (m-1)·(#candidates).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from tqdm.auto import tqdm

from ...engine.runner import Hidden, LayerwiseRunner
from ...models import architecture as arch
from .removal import RemovalOrder
from .. import registry

DISPLAY_NAME = registry.display_name("sleb")


@dataclass
class SlebResult:
    order: RemovalOrder
    candidates: pd.DataFrame  # iteration, layer (original), position (alive), nll, chosen
    layer_forwards: int


def _inputs_of_alive(runner: LayerwiseRunner, alive: list[int], states: list[Hidden], start: int) -> list[Hidden]:
    """Extend ``states[:start+1]`` to the inputs of every alive block (the last block's output is not needed)."""
    states = states[: min(start + 1, len(alive))]
    for q in range(len(states) - 1, len(alive) - 1):
        states.append(runner.layer(alive[q], states[q]))
    return states


NLL_MODES = ("fp32", "released")


def candidate_nll(runner: LayerwiseRunner, alive: list[int], states: list[Hidden], position: int,
                  nll: str = "fp32") -> float:
    """Calibration NLL with alive block ``position`` removed, from its cached input."""
    h = states[position]
    for q in range(position + 1, len(alive)):
        h = runner.layer(alive[q], h)
    return runner.released_nll(h) if nll == "released" else float(runner.window_nll(h).sum())


def sleb_order(runner: LayerwiseRunner, n_remove: int, *, early_barrier: int = 1, latter_barrier: int = 1,
               progress: bool = True, nll: str = "fp32") -> SlebResult:
    """Greedy removal of ``n_remove`` blocks over the runner's calibration windows."""
    if nll not in NLL_MODES:
        raise ValueError(f"nll={nll!r}; allowed: {', '.join(NLL_MODES)}")
    n_layers = arch.num_layers(runner.model)
    alive = list(range(n_layers))
    forwards_before = runner.layer_forwards
    states = _inputs_of_alive(runner, alive, [runner.embed()], 0)
    removed, nlls, rows = [], [], []
    for it in tqdm(range(n_remove), desc="SLEB steps", disable=not progress, leave=False):
        lo, hi = early_barrier, len(alive) - latter_barrier
        if lo >= hi:
            raise ValueError(f"SLEB step {it}: no candidate left between the barriers ({len(alive)} alive blocks, "
                             f"early {early_barrier}, latter {latter_barrier})")
        best_pos, best_nll = -1, float("inf")
        step_rows = []
        for pos in range(lo, hi):
            value = candidate_nll(runner, alive, states, pos, nll)
            step_rows.append({"iteration": it, "layer": alive[pos], "position": pos, "nll": value, "chosen": False})
            if value < best_nll or best_pos < 0:
                best_pos, best_nll = pos, value
        step_rows[best_pos - lo]["chosen"] = True
        rows += step_rows
        removed.append(alive[best_pos])
        nlls.append(best_nll)
        del alive[best_pos]
        states = _inputs_of_alive(runner, alive, states, best_pos)
    info = {"score": "calibration NLL after the removal (sum over windows of mean CE x S)",
            "early_barrier": early_barrier, "latter_barrier": latter_barrier,
            "windows": int(runner.input_ids.shape[0]), "seq_len": int(runner.input_ids.shape[1])}
    if nll != "fp32":  # the default's record stays as it was
        info.update(nll=nll, score="released get_loss: per batch CE in the model dtype x S x B, summed")
    order = RemovalOrder(method=DISPLAY_NAME, n_layers=n_layers, layers=removed, scores=nlls, info=info)
    return SlebResult(order=order, candidates=pd.DataFrame(rows, columns=["iteration", "layer", "position", "nll", "chosen"]),
                      layer_forwards=runner.layer_forwards - forwards_before)
