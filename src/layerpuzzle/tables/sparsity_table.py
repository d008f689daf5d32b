"""Table 3: model size, depth, and for each target sparsity the layers removed and parameters left.

Built from :mod:`layerpuzzle.sparsity` (docs/sparsity.md).  Layout as in the paper:
Model, Size, #Blocks, then per target (~10/20/30 %) Sparsity, #Removed, #Parameters.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from ..sparsity import ArchSpec, remaining_params, removed_for_target, sparsity, total_params
from .paper import load_paper_sparsity


def target_columns(target: int) -> tuple[str, str, str]:
    """The three column headers of one target group."""
    return f"~{target}% Sparsity (%)", f"~{target}% #Removed", f"~{target}% #Parameters (B)"


def sparsity_table(
    models: Mapping[str, ArchSpec],
    paper_names: Mapping[str, str] | None = None,
    targets: Sequence[int] = (10, 20, 30),
) -> pd.DataFrame:
    """Table 3 for ``models`` (key -> spec); the Model column uses ``paper_names[key]`` when given.

    Sizes and parameters in billions, sparsity in percent, all rounded to 2 decimals.
    """
    paper_names = paper_names or {}
    rows = []
    for key, spec in models.items():
        row: dict[str, object] = {
            "Model": paper_names.get(key, key),
            "Size (B)": round(total_params(spec) / 1e9, 2),
            "#Blocks": spec.num_hidden_layers,
        }
        for target in targets:
            n = removed_for_target(spec, target)
            c_sparsity, c_removed, c_params = target_columns(target)
            row[c_sparsity] = round(100 * sparsity(spec, n), 2)
            row[c_removed] = n
            row[c_params] = round(remaining_params(spec, n) / 1e9, 2)
        rows.append(row)
    return pd.DataFrame(rows)


def compare_sparsity_table(
    models: Mapping[str, ArchSpec],
    paper_names: Mapping[str, str],
    paper: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Our Table 3 cells beside the paper's (``resources/paper/table03_sparsity.csv``), one row per model × target.

    For each quantity: ours (unrounded), the paper's value, ours − paper, and
    ``Agrees``: every cell equals the paper's at its printed precision
    (|ours − paper| ≤ half a unit of the last printed digit; counts exactly).
    Models without a paper name are skipped.
    """
    paper = load_paper_sparsity(as_text=True) if paper is None else paper.astype(str)
    quantities = {  # our column -> paper CSV column
        "Size (B)": "size_b",
        "#Blocks": "blocks",
        "Sparsity (%)": "sparsity_pct",
        "#Removed": "removed",
        "#Parameters (B)": "params_b",
    }
    rows = []
    for key, spec in models.items():
        name = paper_names.get(key)
        if name is None:
            continue
        for _, p in paper[paper["model"] == name].iterrows():
            target = int(p["target"])
            n = removed_for_target(spec, target)
            ours = {
                "Size (B)": total_params(spec) / 1e9,
                "#Blocks": spec.num_hidden_layers,
                "Sparsity (%)": 100 * sparsity(spec, n),
                "#Removed": n,
                "#Parameters (B)": remaining_params(spec, n) / 1e9,
            }
            row: dict[str, object] = {"Model": name, "Target (%)": target}
            agrees = True
            for col, paper_col in quantities.items():
                printed = p[paper_col]
                value = float(printed)
                row[col] = ours[col]
                row[f"{col} paper"] = value
                row[f"{col} diff"] = ours[col] - value
                agrees &= abs(ours[col] - value) <= 0.5 * 10 ** -printed_decimals(printed) + 1e-9
            row["Agrees"] = agrees
            rows.append(row)
    return pd.DataFrame(rows)


def printed_decimals(text: str) -> int:
    """Number of digits after the decimal point in a printed number (``"4.0"`` -> 1, ``"13"`` -> 0)."""
    text = str(text).strip()
    return len(text.split(".", 1)[1]) if "." in text else 0
