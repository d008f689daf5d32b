"""LaCo's ratio sweeps (Tables 7/25), ablations (Tables 10-13, 15-18) and Table 14, ours beside the paper's.

One builder for every ablation table (:func:`laco_grid_table`): a row per grid point (model, setting,
layers kept, removed), our BoolQ / PIQA / HellaSwag (the paper's three ablation benchmarks; a column is
empty when ``evaluation.tasks`` lacks the task) and, for the same setting, the paper's three numbers
(Llama2-7B at ~27 %). Paper rows that match none of ours follow as rows of their own (``Source`` paper),
so every published number is shown. :func:`laco_ratio_table` does Tables 7/25 (our Avg over the
evaluated tasks and per task beside the paper's, with the paper's layer count) and
:func:`laco_distance_table` Table 14.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from .columns import EXTRA_TASK_COLUMNS, TASK_COLUMNS
from .paper import PAPER_DIR

LACO_PAPER_DIR = PAPER_DIR / "laco_mka"
PAPER_MODEL = "Llama2-7B"
ABLATION_TASKS = {"boolq": "BoolQ", "piqa": "PIQA", "hellaswag": "HellaSwag"}
# our metrics.json task key -> column of laco_table25_ratios_detail.csv
TABLE25_TASKS = {"hellaswag": "hellaswag", "piqa": "piqa", "boolq": "boolq", "mmlu": "mmlu", "commonsense_qa": "csqa",
                 "race_high": "race_h", "race_middle": "race_m", "wsc": "wsc_p"}
ALL_HEADERS = {**TASK_COLUMNS, **EXTRA_TASK_COLUMNS}


def score(record: Mapping[str, Any], task: str) -> float | None:
    """A task's score in percent from a metrics.json record (None when not evaluated)."""
    t = (record.get("tasks") or {}).get(task) or {}
    return None if t.get("value") is None else 100.0 * float(t["value"])


def _layers(record: Mapping[str, Any]) -> tuple[int | None, int]:
    removed = int(record.get("removed_layers") or 0)
    dense = record.get("dense_layers")
    return (None if dense is None else int(dense) - removed), removed


def paper_setting(stem: str, label: str, paper: pd.DataFrame) -> pd.Series | None:
    """The paper's row for one of our setting labels in ``laco_tables10_18_ablations.csv`` (or Table 16's CSV)."""
    if paper.empty:
        return None
    if stem == "laco_table16_rule":
        want = "Rule" if label.startswith("Rule") else "LaCo"
        hit = paper[(paper["model"] == PAPER_MODEL) & (paper["strategy"].str.split(" ").str[0] == want)]
    elif stem == "laco_table18_size":
        # row labels are lost in the seed; only row 1 is known (= Table 1: 10 sentences)
        hit = paper[paper["setting"] == "row 1"] if label == "10" else paper.iloc[0:0]
    else:
        head = paper["setting"].str.split(" ").str[0]
        hit = paper[(head == label) | (paper["setting"] == label)]
        if hit.empty and label.startswith("T="):
            hit = paper[head.map(lambda s: s.startswith("T=") and _num(s[2:]) == _num(label[2:]))]
    return None if hit.empty else hit.iloc[0]


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def load_paper_grid(stem: str, table: str, directory: Path | None = None) -> pd.DataFrame:
    d = directory or LACO_PAPER_DIR
    if stem == "laco_table16_rule":
        return pd.read_csv(d / "laco_table16_rule_vs_iterative.csv")
    df = pd.read_csv(d / "laco_tables10_18_ablations.csv", dtype={"table": str})
    return df[df["table"] == table].reset_index(drop=True)


def laco_grid_table(stem: str, factor: str, points: Sequence[tuple[str, str, Mapping[str, Any]]],
                    paper: pd.DataFrame) -> pd.DataFrame:
    """Rows of (model, setting label, metrics.json record) with the paper's numbers for the same setting."""
    rows, used = [], set()
    for model, label, record in points:
        kept, removed = _layers(record)
        row: dict[str, Any] = {"Source": "ours", "Model": model, factor: label, "Layers": kept, "#Removed": removed}
        row.update({h: score(record, t) for t, h in ABLATION_TASKS.items()})
        hit = paper_setting(stem, label, paper)
        for t, h in ABLATION_TASKS.items():
            row[f"{h} paper"] = None if hit is None or pd.isna(hit.get(t)) else float(hit[t])
        if hit is not None:
            used.add(hit.name)
        row["Note"] = "" if hit is not None else "no paper row for this setting"
        rows.append(row)
    for i, hit in paper.iterrows():
        if i in used:
            continue
        name = hit["strategy"] if "strategy" in hit else hit["setting"]
        row = {"Source": "paper", "Model": hit.get("model", PAPER_MODEL), factor: name, "Layers": None, "#Removed": None}
        row.update({h: None for h in ABLATION_TASKS.values()})
        row.update({f"{h} paper": None if pd.isna(hit.get(t)) else float(hit[t]) for t, h in ABLATION_TASKS.items()})
        row["Note"] = "" if pd.isna(hit.get("note")) else str(hit["note"])
        rows.append(row)
    cols = ["Source", "Model", factor, "Layers", "#Removed", *ABLATION_TASKS.values(),
            *(f"{h} paper" for h in ABLATION_TASKS.values()), "Note"]
    df = pd.DataFrame(rows, columns=cols)
    num = [*ABLATION_TASKS.values(), *(f"{h} paper" for h in ABLATION_TASKS.values())]
    df[num] = df[num].astype(float).round(2)
    df[["Layers", "#Removed"]] = df[["Layers", "#Removed"]].astype("Int64")  # counts print as integers
    return df


def laco_ratio_table(points: Sequence[tuple[str, str, Mapping[str, Any]]], dense: Mapping[str, Mapping[str, Any]],
                     table7: pd.DataFrame, table25: pd.DataFrame) -> pd.DataFrame:
    """Tables 7/25: Dense and each ratio point; our Avg (mean of the evaluated tasks) and the tasks the paper
    also reports, beside the paper's Llama2-7B row at the same ratio (its layers, Avg, per-task)."""
    rows = []
    for model, ratio, record in [(m, "0", dense[m]) for m in dict.fromkeys(p[0] for p in points)] + list(points):
        kept, removed = _layers(record)
        tasks = [t for t in (record.get("tasks") or {}) if score(record, t) is not None]
        row: dict[str, Any] = {"Model": model, "Ratio (%)": float(ratio), "Layers": kept, "#Removed": removed,
                               "Sparsity (%)": float(record.get("sparsity_pct") or 0.0),
                               "Avg": sum(score(record, t) for t in tasks) / len(tasks) if tasks else None}
        shared = [t for t in TABLE25_TASKS if t in tasks]
        row.update({ALL_HEADERS.get(t, t): score(record, t) for t in shared})
        p7 = table7[(table7["model"] == PAPER_MODEL) & ((table7["ratio_pct"] - float(ratio)).abs() < 0.05)]
        p25 = table25[(table25["model"] == PAPER_MODEL) & ((table25["ratio_pct"] - float(ratio)).abs() < 0.05)]
        row["Layers paper"] = None if p7.empty else int(p7.iloc[0]["layers"])
        row["Avg paper"] = None if p7.empty else float(p7.iloc[0]["avg"])
        for t in shared:
            v = None if p25.empty else p25.iloc[0][TABLE25_TASKS[t]]
            row[f"{ALL_HEADERS.get(t, t)} paper"] = None if v is None or pd.isna(v) else float(v)
        row["Note"] = ("paper Avg over 14 OpenCompass sets, ours over the evaluated tasks; not comparable"
                       if not p7.empty else "no paper row at this ratio")
        rows.append(row)
    df = pd.DataFrame(rows)
    num = [c for c in df.columns if c not in ("Model", "Note", "Layers", "#Removed", "Layers paper")]
    df[num] = df[num].astype(float).round(2)
    df[["Layers", "#Removed", "Layers paper"]] = df[["Layers", "#Removed", "Layers paper"]].astype("Int64")
    return df


def laco_distance_table(points: Sequence[tuple[str, str, Mapping[str, Any]]], paper: pd.DataFrame) -> pd.DataFrame:
    """Table 14: per (model, checkpoint) our KL, kernel and linear CKA; the paper's Llama2-7B values beside."""
    p = {r["measure"]: float(r["value"]) for _, r in paper.iterrows()}
    rows = []
    for model, ckpt, rec in points:
        rows.append({"Model": model, "Checkpoint": ckpt, "KL": rec["kl_divergence"], "Kernel CKA": rec["kernel_cka"],
                     "Linear CKA": rec["linear_cka"], "KL paper": p.get("KL divergence"),
                     "Kernel CKA paper": p.get("kernel CKA"), "Linear CKA paper": p.get("linear CKA"),
                     "Tokens": rec["n_tokens"]})
    df = pd.DataFrame(rows, columns=["Model", "Checkpoint", "KL", "Kernel CKA", "Linear CKA", "KL paper",
                                     "Kernel CKA paper", "Linear CKA paper", "Tokens"])
    num = ["KL", "Kernel CKA", "Linear CKA", "KL paper", "Kernel CKA paper", "Linear CKA paper"]
    df[num] = df[num].astype(float).round(4)
    return df


TABLE14_CAPTION = ("LaCo Table 14: KL divergence (nats, dense as reference) and kernel (RBF, median bandwidth) / linear "
                   "CKA of the final-norm last hidden states, dense vs pruned, on sampled Wikipedia sentences; the "
                   "paper's Llama2-7B values beside (as printed: KL 0.0, CKA 1.0)")


def load_paper_table14(directory: Path | None = None) -> pd.DataFrame:
    return pd.read_csv((directory or LACO_PAPER_DIR) / "laco_table14_distribution_distances.csv")


def laco_grid_tables(stem: str, points: Sequence[tuple[str, str, Mapping[str, Any]]],
                     dense: Mapping[str, Mapping[str, Any]], directory: Path | None = None) -> tuple[pd.DataFrame, str]:
    """(table, caption) of one grid stem: the ratio sweep or an ablation table."""
    from ..methods.laco.grids import GRID_TABLES, RATIO_STEM

    d = directory or LACO_PAPER_DIR
    if stem == RATIO_STEM:
        table = laco_ratio_table(points, dense, pd.read_csv(d / "laco_table07_ratios.csv"),
                                 pd.read_csv(d / "laco_table25_ratios_detail.csv"))
        return table, ("LaCo Tables 7/25: LaCo at the paper's three ratios with Table 9's C, I, T (no target: the "
                       "removed count is whatever T gives); ours (scores in %) beside the paper's Llama2-7B row")
    g = GRID_TABLES[stem]
    table = laco_grid_table(stem, g.factor, points, load_paper_grid(stem, g.table, d))
    return table, (f"{g.caption}. Ours (BoolQ / PIQA / HellaSwag in %, empty when not evaluated) beside the paper's "
                   f"{PAPER_MODEL} numbers (`paper` columns); paper rows without a matching setting follow ours")
