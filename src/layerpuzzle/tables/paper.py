"""The paper's tables as shipped in ``resources/paper`` (see its README.md).

Table 3 (``table03_sparsity.csv``) gives per model and target (~10/20/30 %) the
sparsity, the number of removed layers and the remaining parameters; Tables
8–10 (``table08_10_pruning.csv``) label their row groups with a one-decimal
sparsity.  :func:`paper_sparsity_label` links the two.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .columns import PAPER_CSV_COLUMNS

# src/layerpuzzle/tables/paper.py -> repository root
PAPER_DIR = Path(__file__).resolve().parents[3] / "resources" / "paper"
SPARSITY_CSV = "table03_sparsity.csv"
RESULTS_CSV = "table08_10_pruning.csv"


def load_paper_sparsity(path: str | os.PathLike | None = None, as_text: bool = False) -> pd.DataFrame:
    """Table 3, long format: ``model,size_b,blocks,target,sparsity_pct,removed,params_b``.

    ``as_text=True`` keeps every cell as printed (e.g. ``"4.0"``, ``"13"``), which
    carries the printed precision; otherwise the numeric columns are numbers.
    """
    raw = pd.read_csv(path or PAPER_DIR / SPARSITY_CSV, dtype=str, keep_default_na=False)
    if as_text:
        return raw
    out = raw.copy()
    for col in ("size_b", "sparsity_pct", "params_b"):
        out[col] = out[col].astype(float)
    for col in ("blocks", "target", "removed"):
        out[col] = out[col].astype(int)
    return out


def load_paper_results(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Tables 8–10, one row per printed row; scores and PPL as floats.

    Both a printed ``NaN`` and an unrecoverable (empty) cell become NaN here.
    """
    df = pd.read_csv(path or PAPER_DIR / RESULTS_CSV, dtype={"model": str, "method": str})
    for col in ("sparsity_pct", *PAPER_CSV_COLUMNS.values()):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df


def paper_sparsity_label(
    paper_model: str,
    target_pct: int,
    sparsity: pd.DataFrame | None = None,
    results: pd.DataFrame | None = None,
) -> float | None:
    """The Tables 8–10 row-group label of ``paper_model`` at a target (0 = Dense -> 0.0).

    Table 3 gives the sparsity of (model, target); the label is the nearest of the
    model's non-zero labels in Tables 8–10.  (Rounding Table 3 to one decimal is
    not enough: Vicuna-7B ~10 % is printed 9.18 in Table 3 but labelled 9.0.)
    Returns None when the paper has no such model or target.
    """
    if target_pct == 0:
        return 0.0
    sparsity = load_paper_sparsity() if sparsity is None else sparsity
    results = load_paper_results() if results is None else results
    entry = sparsity[(sparsity["model"] == paper_model) & (sparsity["target"].astype(int) == int(target_pct))]
    labels = sorted(set(results.loc[results["model"] == paper_model, "sparsity_pct"]) - {0.0})
    if entry.empty or not labels:
        return None
    printed = float(entry["sparsity_pct"].iloc[0])
    return min(labels, key=lambda label: abs(label - printed))
