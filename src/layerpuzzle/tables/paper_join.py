"""Our results rows beside the paper's rows of Tables 8–10.

Each of our rows is matched to the paper row of the mapped paper model with the
same method (the variant is ignored) at the same target: the paper's row-group
label for (paper model, target) comes from :func:`.paper.paper_sparsity_label`.
For the paper's own models the target fixes the number of removed layers
(Table 3), so this is the same-removed-layers row; for a smaller stand-in model
mapped to a paper model the removed counts may differ, which Note reports.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .columns import PAPER_CSV_COLUMNS, SCORE_COLUMNS
from .paper import load_paper_results, load_paper_sparsity, paper_sparsity_label
from .results import results_table


def paper_removed(paper_model: str, target_pct: int, sparsity: pd.DataFrame) -> int | None:
    """Layers the paper removes for (model, target) per Table 3 (0 for target 0)."""
    if target_pct == 0:
        return 0
    hit = sparsity[(sparsity["model"] == paper_model) & (sparsity["target"].astype(int) == int(target_pct))]
    return None if hit.empty else int(hit["removed"].iloc[0])


def find_paper_row(paper_results: pd.DataFrame, paper_model: str, label: float, method: str) -> pd.Series | None:
    """The paper's row of ``paper_model`` at sparsity label ``label`` for ``method`` (None if absent)."""
    hit = paper_results[
        (paper_results["model"] == paper_model)
        & ((paper_results["sparsity_pct"] - label).abs() < 1e-6)
        & (paper_results["method"] == method)
    ]
    return None if hit.empty else hit.iloc[0]


def compare_results_with_paper(
    records: Iterable[Mapping[str, Any]],
    paper_names: Mapping[str, str],
    paper_results: pd.DataFrame | None = None,
    paper_sparsity: pd.DataFrame | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The results table with, per value column ``c``, ``c paper`` and ``c diff`` (= ours − paper).

    ``paper_names`` maps our model name to the paper's (e.g. ``"llama2-7b" -> "LLaMA-2-7B"``);
    rows of unmapped models, or without a paper row, get empty paper cells.
    """
    paper_results = load_paper_results() if paper_results is None else paper_results
    paper_sparsity = load_paper_sparsity() if paper_sparsity is None else paper_sparsity
    ours = results_table(records, model_order=model_order, with_keys=True)
    rows = []
    for _, row in ours.iterrows():
        name = paper_names.get(row["Model"])
        target = int(row["Target (%)"])
        label = paper_sparsity_label(name, target, paper_sparsity, paper_results) if name else None
        match = find_paper_row(paper_results, name, label, row["Base method"]) if label is not None else None
        removed = paper_removed(name, target, paper_sparsity) if name else None
        out: dict[str, Any] = {
            "Model": row["Model"],
            "Paper model": name or "",
            "Sparsity (%)": row["Sparsity (%)"],
            "Paper sparsity (%)": label,
            "#Removed": row["#Removed"],
            "Paper #Removed": removed,
            "Method": row["Method"],
        }
        for col in SCORE_COLUMNS:
            theirs = None if match is None else float(match[PAPER_CSV_COLUMNS[col]])
            out[col] = row[col]
            out[f"{col} paper"] = theirs
            out[f"{col} diff"] = _difference(row[col], theirs)
        notes = [row["Note"]] if row["Note"] else []
        if name and match is None:
            notes.append(f"no paper row for {name} {row['Base method']} at ~{target}%")
        if removed is not None and removed != row["#Removed"]:
            notes.append(f"removed layers differ (ours {row['#Removed']}, paper {removed})")
        out["Note"] = "; ".join(notes)
        rows.append(out)
    columns = ["Model", "Paper model", "Sparsity (%)", "Paper sparsity (%)", "#Removed", "Paper #Removed", "Method"]
    columns += [f"{c}{suffix}" for c in SCORE_COLUMNS for suffix in ("", " paper", " diff")] + ["Note"]
    df = pd.DataFrame(rows, columns=columns)
    counts = ["#Removed", "Paper #Removed"]
    values = [c for c in df.columns if c not in ("Model", "Paper model", "Method", "Note", *counts)]
    df[counts] = df[counts].astype("Int64")
    df[values] = df[values].astype(float).round(2)
    return df


def _difference(ours: Any, theirs: float | None) -> float | None:
    if theirs is None or ours is None or pd.isna(ours) or math.isnan(theirs):
        return None
    return float(ours) - theirs
