"""Column names of the results tables (paper Tables 8–10) and where each value comes from.

Each task maps the lm-eval task name used in ``metrics.json`` to the printed
column header and to the column of ``resources/paper/table08_10_pruning.csv``.
MMLU is 5-shot, the other six tasks 0-shot (docs/evaluation.md).
"""

from __future__ import annotations

# metrics.json task key -> printed header
TASK_COLUMNS: dict[str, str] = {
    "arc_challenge": "ARC-c",
    "arc_easy": "ARC-e",
    "hellaswag": "HellaS",
    "openbookqa": "OBQA",
    "piqa": "PIQA",
    "winogrande": "WinoG",
    "mmlu": "MMLU(5)",
}

# Headers of the extra benchmarks (evaluation.harness.EXTRA_TASKS: all 0-shot acc). Kept apart from
# TASK_COLUMNS on purpose: the CoMe results tables, their Avg and RPT cover exactly the seven above.
EXTRA_TASK_COLUMNS: dict[str, str] = {
    "boolq": "BoolQ",
    "race_high": "RACE-H",
    "race_middle": "RACE-M",
    "commonsense_qa": "CSQA",
    "wsc273": "WSC273",
    "wsc": "WSC",
}

# metrics.json perplexity key -> printed header (C4 first, as in the paper)
PPL_COLUMNS: dict[str, str] = {"c4": "C4", "wikitext2": "Wiki-2"}

# printed header -> column of the paper CSV
PAPER_CSV_COLUMNS: dict[str, str] = {
    "ARC-c": "arc_c",
    "ARC-e": "arc_e",
    "HellaS": "hellaswag",
    "OBQA": "obqa",
    "PIQA": "piqa",
    "WinoG": "winogrande",
    "MMLU(5)": "mmlu5",
    "Avg": "avg",
    "RPT": "rpt",
    "C4": "ppl_c4",
    "Wiki-2": "ppl_wiki2",
}

# every numeric column of a results row, in printed order
SCORE_COLUMNS: tuple[str, ...] = (*TASK_COLUMNS.values(), "Avg", "RPT", *PPL_COLUMNS.values())
