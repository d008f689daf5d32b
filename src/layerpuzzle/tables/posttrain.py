"""Post-training tables: Table 7 (budgets) and the post-training comparison.

* :func:`table7` — one row per post-trained checkpoint with the budget it actually
  ran (``training.json``), the paper's Table 7 row of the same method beside it.
* :func:`posttrain_table` — Dense, CoMe (no post-training), CoMe-mp, CoMe-sp,
  LLM-Streamline and FuseGPT rows with the 7 task scores, Avg, RPT, C4 and
  WikiText-2 PPL (:func:`layerpuzzle.tables.results.results_table`) and T_layer.
  The paper's own post-training table is in the main text, which could not be
  retrieved (docs/tables.md (a)), so there are no paper numbers to put beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .results import method_label, results_table

POSTTRAIN_METHOD_ORDER = ("Dense", "CoMe", "CoMe-mp", "CoMe-sp", "LLM-Streamline", "FuseGPT")
TABLE7_METHOD_ORDER = ("FuseGPT", "LLM-Streamline", "CoMe-mp", "CoMe-sp")
BUDGET_COLUMNS = {"iterations": "#Iterations", "layers_per_iteration": "#Layers", "epochs": "#Epochs",
                  "steps": "#Steps", "batch_size": "BatchSize", "token_length": "TokenLength", "T_layer": "T_layer"}


def checkpoint_model(ckpt_dir: str | Path) -> str:
    """The model name of ``results/{model}/pruned/<key>/<target>/<variant>``."""
    parts = Path(ckpt_dir).parts
    return parts[parts.index("pruned") - 1]


def training_info(ckpt_dir: str | Path) -> dict[str, Any]:
    """What a post-trained checkpoint says about itself: method, variant, target, budget, checkpoint id."""
    d = Path(ckpt_dir)
    pruning = json.loads((d / "pruning.json").read_text())
    training = json.loads((d / "training.json").read_text())
    parts = d.parts
    return {"model": checkpoint_model(d), "checkpoint": "/".join(parts[parts.index("pruned") + 1:]),
            "method": pruning["method"], "variant": pruning.get("variant") or "",
            "target_pct": pruning.get("target_pct"), "budget": training["budget"]}


def _order(method: str, order: Sequence[str]) -> int:
    return order.index(method) if method in order else len(order)


def table7(infos: Iterable[Mapping[str, Any]], paper: pd.DataFrame, model_order: Sequence[str] = ()) -> pd.DataFrame:
    """Table 7 of our runs, each method's paper row (LLaMA-2-7B, Source = paper) first."""
    rows = []
    ours = list(infos)
    methods = sorted({i["method"] for i in ours} | set(paper["method"]), key=lambda m: (_order(m, TABLE7_METHOD_ORDER), m))
    order = list(model_order)
    for m in methods:
        for r in paper[paper["method"] == m].itertuples(index=False):
            rows.append({"Method": m, "Source": "paper", "Model": "LLaMA-2-7B", "Target (%)": 30,
                         "#Iterations": int(r.iterations), "#Layers": int(r.layers_per_iteration),
                         "#Epochs": int(r.epochs), "#Steps": int(r.steps), "BatchSize": int(r.batch_size),
                         "TokenLength": int(r.token_length), "T_layer": int(r.T_layer_computed_tokens),
                         "T_layer (B)": float(r.T_layer_printed_B)})
        mine = [i for i in ours if i["method"] == m]
        mine.sort(key=lambda i: (order.index(i["model"]) if i["model"] in order else len(order), i["model"],
                                 i["target_pct"] or 0, i["variant"]))
        for i in mine:
            b = i["budget"]
            rows.append({"Method": method_label(m, i["variant"]), "Source": "ours", "Model": i["model"],
                         "Target (%)": i["target_pct"], **{BUDGET_COLUMNS[k]: int(b[k]) for k in BUDGET_COLUMNS},
                         "T_layer (B)": b["T_layer"] / 1e9})
    columns = ["Method", "Source", "Model", "Target (%)", *BUDGET_COLUMNS.values(), "T_layer (B)"]
    return pd.DataFrame(rows, columns=columns)


def posttrain_table(records: Sequence[Mapping[str, Any]], t_layers: Mapping[tuple[str, str], int],
                    model_order: Sequence[str] = ()) -> pd.DataFrame:
    """The comparison table: ``records`` = metrics.json dicts; ``t_layers[(model, method cell)]`` = T_layer.

    T_layer is empty for Dense and 0 for CoMe (no post-training).
    """
    df = results_table(records, model_order=model_order, with_keys=True)
    df["T_layer"] = [
        None if base == "Dense" else (0 if base == "CoMe" else t_layers.get((model, method)))
        for model, method, base in zip(df["Model"], df["Method"], df["Base method"])
    ]
    order = list(model_order)
    df["_m"] = [order.index(m) if m in order else len(order) for m in df["Model"]]
    df["_r"] = [_order(b, POSTTRAIN_METHOD_ORDER) for b in df["Base method"]]
    df = df.sort_values(["_m", "Model", "Target (%)", "_r"], kind="stable")
    keep = [c for c in df.columns if c not in ("_m", "_r", "#Removed", "Target (%)", "Base method")]
    out = df[keep].reset_index(drop=True)
    out["T_layer"] = out["T_layer"].astype("Int64")
    return out
