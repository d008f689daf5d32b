"""Reverse: remove the last layers first (CoMe's ``methods/reverse.py``; docs/methods/reverse.md).

The order is ``L-1-keep_last, L-2-keep_last, …, 0``; the ``keep_last`` final
layers (the released code's ``--retain-layer``) are listed at the end, flagged
as protected.  Not in the paper's tables; a data-free reference point (it is
also what the released MKA code amounts to, docs/methods/mka.md).
"""

from __future__ import annotations

from .removal import RemovalOrder
from .. import registry

DISPLAY_NAME = registry.display_name("reverse")


def reverse_order(n_layers: int, keep_last: int = 0) -> RemovalOrder:
    if not 0 <= keep_last < n_layers:
        raise ValueError(f"keep_last must be in [0, {n_layers}), got {keep_last}")
    head = list(range(n_layers - 1 - keep_last, -1, -1))
    tail = list(range(n_layers - 1, n_layers - 1 - keep_last, -1))
    return RemovalOrder(method=DISPLAY_NAME, n_layers=n_layers, layers=head + tail,
                        scores=[float("nan")] * n_layers,
                        protected=[False] * len(head) + [True] * len(tail),
                        info={"keep_last": keep_last})
