"""LaCo's ratio sweeps and ablations as grids of LaCo variants (LaCo Tables 7/25, 10-13, 15-18).

Each grid point is a set of LaCo variant settings (``methods.laco.variants`` keys): ``ablations.base``
with one key set. :func:`grid_points` lists them per table as ``(setting label, settings)``; the
checkpoint of a point is ``results/{model}/pruned/laco/{target}/{path component of its settings}``.

* Table 10 — C = ``merge_layers``; C = 1 is the paper's "drop" row (= Table 15), built as
  ``merge: drop`` with C = 2 (each group keeps only its base layer: m = 1 layer removed per step);
* Table 11 — I = ``interval``; Table 13 — T = ``threshold``;
* Table 12 — D, the 10 random Wikipedia sentences redrawn with other seeds (Round 1-3);
* Table 15 — drop vs merge (C = 2 both, as the paper's m = 1);
* Table 16 — a fixed merge plan (``plan``) vs the search;
* Table 17 — Wikipedia vs BookCorpus (a PG19 book stands in) sentences;
* Table 18 — the number of sentences;
* Tables 7/25 — ``ratios``: LaCo at the paper's three ratios with Table 9's C, I, T.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .merge_plan import shift_plan


@dataclass(frozen=True)
class GridTable:
    stem: str        # output file stem
    table: str       # the LaCo paper's table number(s)
    factor: str      # printed header of the varied setting
    caption: str


GRID_TABLES: dict[str, GridTable] = {g.stem: g for g in (
    GridTable("laco_table10_c", "10", "C", "LaCo Table 10: layers merged per operation C"),
    GridTable("laco_table11_i", "11", "I", "LaCo Table 11: minimum interval I between merges"),
    GridTable("laco_table12_d", "12", "D", "LaCo Table 12: the calibration sentences D redrawn (Round 1-3)"),
    GridTable("laco_table13_t", "13", "T", "LaCo Table 13: threshold T"),
    GridTable("laco_table15_drop", "15", "Operation", "LaCo Table 15: dropping vs merging (m = 1)"),
    GridTable("laco_table16_rule", "16", "Strategy", "LaCo Table 16: a fixed merge plan vs LaCo's iterative search"),
    GridTable("laco_table17_source", "17", "Source", "LaCo Table 17: calibration source, Wikipedia vs book text"),
    GridTable("laco_table18_size", "18", "Sentences", "LaCo Table 18: number of calibration sentences"),
)}
RATIO_STEM = "laco_table07_25_ratios"


def grid_points(stem: str, ablations: dict[str, Any], n_layers: int | None) -> list[tuple[str, dict[str, Any]]]:
    """``[(setting label, variant settings)]`` of one ablation table; ``n_layers`` places Table 16's plan."""
    base = {k: v for k, v in (ablations.get("base") or {}).items() if k not in ("label", "targets")}
    if stem == "laco_table10_c":
        return [(f"C={c}", {**base, "merge_layers": 2, "merge": "drop"} if c == 1 else {**base, "merge_layers": c})
                for c in ablations["merge_layers"]]
    if stem == "laco_table11_i":
        return [(f"I={i}", {**base, "interval": i}) for i in ablations["interval"]]
    if stem == "laco_table12_d":
        return [("Table 1", base)] + [(f"Round{k}", {**base, "sentence_seed": s})
                                      for k, s in enumerate(ablations["sentence_seeds"], 1)]
    if stem == "laco_table13_t":
        return [(f"T={t:g}", {**base, "threshold": t}) for t in ablations["threshold"]]
    if stem == "laco_table15_drop":
        return [("Drop (m=1)", {**base, "merge_layers": 2, "merge": "drop"}), ("Merge (Table 1)", base)]
    if stem == "laco_table16_rule":
        plan = ablations["rule_plan"]
        if n_layers is not None and n_layers != ablations["rule_plan_layers"]:
            plan = shift_plan(plan, ablations["rule_plan_layers"], n_layers)
        rule = {k: v for k, v in base.items() if k in ("variant", "sentence_source", "sentence_count", "sentence_seed")}
        return [(f"Rule ({plan.replace('+', ', ')})", {**rule, "plan": plan}), ("LaCo", base)]
    if stem == "laco_table17_source":
        return [("Wikipedia (Table 1)", base)] + [
            (f"BookCorpus-Round{k}", {**base, "sentence_source": "book", "sentence_seed": s})
            for k, s in enumerate(ablations["book_seeds"], 1)]
    if stem == "laco_table18_size":
        return [(str(n), {**base, "sentence_count": n}) for n in ablations["sentence_count"]]
    raise KeyError(f"unknown LaCo grid table {stem!r}; known: {', '.join([*GRID_TABLES, RATIO_STEM])}")


def ratio_points(ablations: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    """``[(target fraction, variant settings)]`` of Tables 7/25 (Table 9's C, I, T; stop_at_target false)."""
    base = {k: v for k, v in (ablations.get("base") or {}).items()
            if k in ("variant", "sentence_source", "sentence_count", "sentence_seed")}
    return [(float(r["target"]), {**base, "stop_at_target": False, "merge_layers": r["merge_layers"],
                                  "interval": r.get("interval", 2), "threshold": r["threshold"]})
            for r in ablations["ratios"]]
