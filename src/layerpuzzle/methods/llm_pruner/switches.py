"""LLM-Pruner's switches (docs/methods/llm_pruner.md); the values are those of :mod:`.settings`."""

from ..switches import Switch
from .settings import AGGREGATIONS, DEFAULT_AGGREGATION, DEFAULT_IMPORTANCE, IMPORTANCES

SWITCHES = {
    "llm_pruner": (
        Switch("importance", IMPORTANCES, DEFAULT_IMPORTANCE, {
            "param_first": "element salience s = w·g (first-order Taylor term; hf_prune.py's argparse default).",
            "param_second": "element salience s = w·H·w with H the Fisher diagonal (second-order term, no ½, "
                            "as the released code).",
            "param_mix": "element salience s = w·g − ½·w·H·w (both terms; the README's block-wise recipe)."},
            released="param_mix"),
        Switch("aggregation", AGGREGATIONS, DEFAULT_AGGREGATION, {
            "sum": "a unit's importance sums the |s| terms of all its member weights (the paper; "
                   "--grouping_strategy sum).",
            "mean": "the member weights' terms are averaged per channel position, then summed over positions.",
            "max": "the largest member weight's term per channel position, summed over positions.",
            "prod": "the product of the member weights' terms per channel position, summed over positions.",
            "first": "only the root weight's terms (q_proj for multi-head, k_proj for grouped KV heads, gate_proj)."},
            released="sum"),
    ),
}
