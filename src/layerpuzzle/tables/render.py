"""Write a table as CSV, Markdown (GitHub pipe table) or LaTeX (booktabs tabular), atomically.

Cells: empty for missing values (None/NaN), ``inf`` for infinite PPL, integers
as integers, other numbers with ``decimals`` digits (2 by default).
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import atomic_file, write_text

# Characters special to LaTeX, and their text-mode escapes (backslash handled first).
LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def format_cell(value: Any, decimals: int = 2) -> str:
    """The printed text of one cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        v = float(value)
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else f"{v:.{decimals}f}"
    return str(value)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _cells(df: pd.DataFrame, decimals: int) -> list[list[str]]:
    return [[format_cell(v, decimals) for v in row] for row in df.itertuples(index=False, name=None)]


def markdown_table(df: pd.DataFrame, caption: str | None = None, decimals: int = 2) -> str:
    """A GitHub pipe table (numeric columns right-aligned), preceded by a bold caption line."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    align = ["---:" if _is_numeric(df[c]) else "---" for c in df.columns]
    lines = [f"**{caption}**", ""] if caption else []
    lines += [line([str(c) for c in df.columns]), "| " + " | ".join(align) + " |"]
    lines += [line(cells) for cells in _cells(df, decimals)]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape the LaTeX special characters of plain text."""
    return "".join(LATEX_ESCAPES.get(ch, ch) for ch in text)


def latex_table(df: pd.DataFrame, caption: str | None = None, decimals: int = 2) -> str:
    """A booktabs ``tabular`` (numeric columns right-aligned); with a caption, wrapped in a ``table``."""
    spec = "".join("r" if _is_numeric(df[c]) else "l" for c in df.columns)

    def line(cells: list[str]) -> str:
        return " & ".join(latex_escape(c) for c in cells) + r" \\"

    body = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", line([str(c) for c in df.columns]), r"\midrule"]
    body += [line(cells) for cells in _cells(df, decimals)]
    body += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        body = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(caption)}}}", *body, r"\end{table}"]
    return "\n".join(body) + "\n"


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """CSV with empty cells for missing values, written atomically."""
    with atomic_file(path) as tmp:
        df.to_csv(tmp, index=False, na_rep="")


def write_markdown(df: pd.DataFrame, path: str | os.PathLike, caption: str | None = None, decimals: int = 2) -> None:
    write_text(path, markdown_table(df, caption, decimals))


def write_latex(df: pd.DataFrame, path: str | os.PathLike, caption: str | None = None, decimals: int = 2) -> None:
    write_text(path, latex_table(df, caption, decimals))


def write_table(df: pd.DataFrame, stem: str | os.PathLike, caption: str | None = None, decimals: int = 2) -> list[Path]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex``; return the three paths."""
    stem = Path(stem)
    paths = [stem.with_name(stem.name + ext) for ext in (".csv", ".md", ".tex")]
    write_csv(df, paths[0])
    write_markdown(df, paths[1], caption, decimals)
    write_latex(df, paths[2], caption, decimals)
    return paths
