"""FuseGPT-MI's removal order for Table 4 (the paper's "FuseGPT-MI (MI order)" rows).

The iterative loop removes, at iteration t, the layer of lowest Macro Influence on the current stack;
its original index is ``removed_original``. Because the loop is greedy and deterministic, the first k
removals of a run that removes n ≥ k layers are exactly the removals of a run that removes k, so the
order of the checkpoint at the highest target gives every lower Table 4 level.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..dlp.removal import RemovalOrder
from .. import registry


def mi_removal_order(record: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> RemovalOrder:
    """The order of a FuseGPT checkpoint's ``fusegpt.json``; score = the removed layer's MI at its iteration."""
    iterations = sorted(record["iterations"], key=lambda it: it["iteration"])
    if not iterations:
        raise ValueError("fusegpt.json holds no iterations: nothing was removed")
    layers = [int(it["removed_original"]) for it in iterations]
    scores = [float(it["macro_influence"][it["removed_current"]]) for it in iterations]
    return RemovalOrder(method=registry.display_name("fusegpt_mi"), n_layers=int(iterations[0]["n_layers"]), layers=layers, scores=scores,
                        protected=[False] * len(layers), source=["computed"] * len(layers), info=dict(info or {}))
