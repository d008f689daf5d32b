"""CoMe: concatenation-based merging of adjacent layers ("Layer as Puzzle Pieces", docs/methods/come.md).

- :mod:`.retention` — retention ratios r_t (Eq. 3), the ρ rule and integer unit budgets.
- :mod:`.concat_merge` — the concatenation-based merge of a window (Eq. 5).
"""

from .concat_merge import (
    UnitSelection,
    concat_merge,
    merge_window,
    merged_state,
    query_head_mask,
    select_units,
    top_k_mask,
)
from .retention import distribute_and_round, retention_ratios, rho_threshold

__all__ = [
    "UnitSelection",
    "concat_merge",
    "distribute_and_round",
    "merge_window",
    "merged_state",
    "query_head_mask",
    "retention_ratios",
    "rho_threshold",
    "select_units",
    "top_k_mask",
]
