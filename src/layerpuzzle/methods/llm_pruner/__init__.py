"""LLM-Pruner (Ma, Fang & Wang, NeurIPS 2023): block-wise width pruning with Taylor importance.

Own implementation of the released ``hf_prune.py --block_wise`` recipe (no torch-pruning):
KV groups and MLP channels of the middle layers, first-order / second-order / mixed Taylor
importance, local per-layer ratio.  Checkpoints are uneven-width (:mod:`layerpuzzle.models.uneven`).
"""

from .counting import ratio_for_sparsity, removed_params, units_to_prune
from .prune import METHOD, prune_width
from .settings import AGGREGATIONS, DEFAULT_AGGREGATION, DEFAULT_IMPORTANCE, IMPORTANCES, default_layers

__all__ = ["AGGREGATIONS", "DEFAULT_AGGREGATION", "DEFAULT_IMPORTANCE", "IMPORTANCES", "METHOD",
           "default_layers", "prune_width", "ratio_for_sparsity", "removed_params", "units_to_prune"]
