"""Direct layer pruning (DLP) baselines of CoMe's Tables 4 and 8-10 (docs/methods/mag_plus.md, docs/methods/taylor_plus.md, docs/methods/shortgpt.md, docs/methods/sleb.md, docs/tables.md).

- :mod:`.removal` — removal orders, the "+" heuristic, one-shot removal.
- :mod:`.magnitude` — Mag+ (Σ|W| per block, data-free).
- :mod:`.taylor` — Taylor+ (Σ|W·∂L/∂W| per block).
- :mod:`.shortgpt` — ShortGPT (lowest Block Influence first).
- :mod:`.sleb` — SLEB (iterative greedy removal by calibration NLL, incremental evaluation).
- :mod:`.reverse` — Reverse (the last layers first).
- :mod:`.order_io` — orders as parquet artifacts (the paper's Table 4 is built in :mod:`layerpuzzle.tables.table4`).
- :mod:`.pipeline` — what the workflow's jobs call.
"""

from .magnitude import magnitude_order, magnitude_scores
from .removal import RemovalOrder, apply_plus_heuristic, ascending_order, ranked_order, remove_layers
from .reverse import reverse_order
from .shortgpt import bi_from_rows, block_influence, shortgpt_order
from .sleb import SlebResult, sleb_order
from .taylor import taylor_order, taylor_scores

__all__ = [
    "RemovalOrder",
    "SlebResult",
    "apply_plus_heuristic",
    "ascending_order",
    "bi_from_rows",
    "block_influence",
    "magnitude_order",
    "magnitude_scores",
    "ranked_order",
    "remove_layers",
    "reverse_order",
    "shortgpt_order",
    "sleb_order",
    "taylor_order",
    "taylor_scores",
]
