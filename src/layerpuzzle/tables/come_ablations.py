"""The CoMe ablations of Tables 11–14 (LLaMA-2-7B at ~30 % in the paper; docs/methods/come.md), ours beside the paper's.

Each table varies one setting of CoMe with everything else at the model's
default run:

* Table 11 — ``p`` (skewness exponent of Eq. 3);
* Table 12 — ``calib_rows`` (calibration rows, "Num");
* Table 13 — ``layers_per_merge`` (merge step granularity);
* Table 14 — ``calib_dataset`` (calibration corpus).

A row holds our 7 task scores, Avg, RPT (against our Dense row of the same
model) and the C4 / Wiki-2 PPL, then the paper's Avg, RPT, C4 and Wiki-2 for
the same grid value (empty where the paper has none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from .columns import SCORE_COLUMNS
from .paper import PAPER_DIR
from .results import result_row


@dataclass(frozen=True)
class Ablation:
    stem: str  # output file stem and paper CSV stem
    param: str  # the variant key varied
    header: str  # printed column
    paper_key: str  # column of the paper CSV
    caption: str


ABLATIONS: dict[str, Ablation] = {
    a.stem: a
    for a in (
        Ablation("table11_p", "p", "p", "p",
                 "Table 11: effect of the skewness exponent p of the retention ratios (CoMe, ~30 %)"),
        Ablation("table12_calib_scale", "calib_rows", "Num", "num_samples",
                 "Table 12: calibration data scale, number of text rows (CoMe, ~30 %)"),
        Ablation("table13_merge_granularity", "layers_per_merge", "Layers/merge", "layers_per_merge",
                 "Table 13: merge step granularity, layers merged per iteration (CoMe, ~30 %)"),
        Ablation("table14_calib_dataset", "calib_dataset", "Dataset", "dataset",
                 "Table 14: calibration dataset (CoMe, ~30 %)"),
    )
}

# our calibration dataset key -> the paper's row label in Table 14
PAPER_DATASET_LABELS = {"wikitext2": "wiki2", "c4": "C4", "pg19": "PG19 (2)", "mmlu": "MMLU", "alpaca": "Alpaca"}
PAPER_COLUMNS = {"Avg": "avg", "RPT": "rpt", "C4": "ppl_c4", "Wiki-2": "ppl_wiki2"}
PAPER_MODEL = "LLaMA-2-7B"


def paper_label(param: str, value: Any) -> str:
    """The paper CSV's key cell for a grid value (``inf``, ``16``, ``wiki2``, ...)."""
    if param == "calib_dataset":
        return PAPER_DATASET_LABELS.get(str(value), str(value))
    v = float(value)
    if math.isinf(v):
        return "inf"
    return str(int(v)) if v.is_integer() else str(v)


def load_paper_ablation(ablation: Ablation, path: str | Path | None = None) -> pd.DataFrame:
    df = pd.read_csv(path or PAPER_DIR / f"{ablation.stem}.csv", dtype={ablation.paper_key: str})
    return df.set_index(ablation.paper_key)


def ablation_table(ablation: Ablation, points: Sequence[tuple[str, Any, Mapping[str, Any]]],
                   dense: Mapping[str, Mapping[str, Any]], paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows of (model, grid value, metrics.json record), with our Avg/RPT and the paper's beside them.

    ``dense`` maps each model to its Dense metrics record (for RPT).
    """
    paper = load_paper_ablation(ablation) if paper is None else paper
    rows = []
    for model, value, record in points:
        ours = result_row(record, dense.get(model))
        row: dict[str, Any] = {"Model": model, ablation.header: paper_label(ablation.param, value)}
        row.update({c: ours[c] for c in SCORE_COLUMNS})
        key = paper_label(ablation.param, value)
        hit = paper.loc[key] if key in paper.index else None
        for header, col in PAPER_COLUMNS.items():
            row[f"{header} paper"] = None if hit is None else float(hit[col])
        row["Note"] = ours["Note"]
        rows.append(row)
    columns = ["Model", ablation.header, *SCORE_COLUMNS, *(f"{h} paper" for h in PAPER_COLUMNS), "Note"]
    df = pd.DataFrame(rows, columns=columns)
    numeric = [*SCORE_COLUMNS, *(f"{h} paper" for h in PAPER_COLUMNS)]
    df[numeric] = df[numeric].astype(float).round(2)
    return df


def caption(ablation: Ablation) -> str:
    return (f"{ablation.caption}. Ours (scores in %, RPT vs our Dense, PPL C4 / Wiki-2) beside the paper's "
            f"{PAPER_MODEL} numbers (`paper` columns).")
