"""Deltas between our reproduced table cells and the paper's, against tolerance bands.

Every ``results/tables/*_vs_paper.csv`` holds, for a value column ``c``, the
paper's value in ``c paper`` and (usually) ``ours - paper`` in ``c diff``.  For
each row and each ``c`` with a numeric paper value and a numeric value of ours,

    delta = ours - paper   (the ``c diff`` cell when present, else computed)

is inside its band when

    accuracy (ARC-c ... MMLU(5), Avg, RPT):  |delta| <= accuracy_points
    perplexity (C4, Wiki-2):                 |delta| <= ppl_relative * |paper|
    sparsity (... Sparsity (%)):             |delta| <= sparsity_points
    counts (#Removed, #Blocks):              |delta| <= count
    parameters (Size (B), #Parameters (B)):  |delta| <= params_relative * |paper|
    anything else:                           |delta| <= other_relative * |paper|
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..tables.columns import PPL_COLUMNS, TASK_COLUMNS
from .settings import Tolerance

ACCURACY = frozenset({*TASK_COLUMNS.values(), "Avg", "RPT"})
PERPLEXITY = frozenset(PPL_COLUMNS.values())
COUNTS = frozenset({"#Removed", "#Blocks"})
PARAMETERS = frozenset({"Size (B)", "#Parameters (B)"})
TARGET_PREFIX = re.compile(r"^~\d+% ")  # Table 3's column groups: "~10% Sparsity (%)"
ID_SKIP = frozenset({"Note", "Agrees"})


@dataclass(frozen=True)
class PaperDelta:
    """One reproduced cell beside the paper's."""

    table: str
    row: str
    column: str
    kind: str
    ours: float
    paper: float
    delta: float
    allowed: float  # the band's half width for this cell
    within: bool


def column_kind(column: str) -> str:
    """accuracy | ppl | sparsity | count | params | other."""
    base = TARGET_PREFIX.sub("", column)
    if base in ACCURACY:
        return "accuracy"
    if base in PERPLEXITY:
        return "ppl"
    if base == "Sparsity (%)":
        return "sparsity"
    if base in COUNTS:
        return "count"
    if base in PARAMETERS:
        return "params"
    return "other"


def allowed_delta(kind: str, paper: float, tol: Tolerance) -> float:
    """Half width of the band of a ``kind`` cell whose paper value is ``paper``."""
    return {
        "accuracy": tol.accuracy_points,
        "ppl": tol.ppl_relative * abs(paper),
        "sparsity": tol.sparsity_points,
        "count": tol.count,
        "params": tol.params_relative * abs(paper),
    }.get(kind, tol.other_relative * abs(paper))


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def row_label(row: pd.Series, value_columns: Iterable[str]) -> str:
    """The row's identifying cells (``key=value``, not the compared values, not Note)."""
    skip = set(value_columns) | ID_SKIP
    parts = [f"{c}={row[c]}" for c in row.index
             if c not in skip and not c.endswith((" paper", " diff")) and pd.notna(row[c]) and str(row[c]) != ""]
    return ", ".join(parts)


def table_deltas(df: pd.DataFrame, table: str, tol: Tolerance) -> list[PaperDelta]:
    """Every cell of ``df`` that has a numeric paper value and a numeric value of ours."""
    columns = [c[: -len(" paper")] for c in df.columns if c.endswith(" paper")]
    columns = [c for c in columns if c in df.columns or f"{c} diff" in df.columns]
    out = []
    for i, row in df.iterrows():
        label = row_label(row, columns) or f"row {i}"
        for c in columns:
            paper = _number(row[f"{c} paper"])
            ours = _number(row[c]) if c in df.columns else None
            diff = _number(row[f"{c} diff"]) if f"{c} diff" in df.columns else None
            if paper is None or (ours is None and diff is None):
                continue
            delta = diff if diff is not None else ours - paper
            ours = ours if ours is not None else paper + delta
            kind = column_kind(c)
            allowed = allowed_delta(kind, paper, tol)
            out.append(PaperDelta(table, label, c, kind, ours, paper, delta, allowed, abs(delta) <= allowed + 1e-9))
    return out


def paper_deltas(workdir: str | Path, tol: Tolerance, tables: str = "results/tables",
                 pattern: str = "*_vs_paper.csv") -> list[PaperDelta]:
    """The deltas of every ``tables/pattern`` CSV under ``workdir`` (tables named relative to it)."""
    workdir = Path(workdir)
    out: list[PaperDelta] = []
    for path in sorted((workdir / tables).glob(pattern)):
        try:
            df = pd.read_csv(path)
        except pd.errors.EmptyDataError:  # a comparison without any paper model: no rows, no columns
            continue
        out += table_deltas(df, path.relative_to(workdir).as_posix(), tol)
    return out
