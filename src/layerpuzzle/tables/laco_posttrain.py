"""LaCo Tables 6/24 (post-training and re-pruning) and Table 21 (LaCo vs LLM-Pruner at 55 %, both post-trained).

Rows come from ``metrics.json`` records and the checkpoints' ``pruning.json`` / ``training.json``:

* ``layers`` — decoder layers of the checkpoint; ``params kept (%)`` — of the *original* model:
  Π_k (1 − s_k/100) over the chain's pruning steps, s_k = ``sparsity_pct`` of each step relative to its own
  input (a re-pruned derived model: LaCo's sparsity × the re-pruning's; post-training changes no count);
* ``tokens seen`` — LM post-training tokens (steps × batch × sequence; LaCo: ~1 B);
* the evaluated task scores (percent), their mean ``Avg`` over the tasks present, and WikiText-2 PPL.

``*_vs_paper``: per row and per task that LaCo's Table 24 (Tables 6/24) or Table 21 also reports, our score,
the paper's (Llama2-7B) and the difference. The paper's Table 6 reports OpenCompass category averages
(reasoning, language, knowledge, examination, understanding) that our task set cannot form; its Avg is
shown beside ours for reference only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parents[3] / "resources" / "paper" / "laco_mka"
PAPER_MODEL = "Llama2-7B"
# our lm-eval task -> the paper's column (Table 24 / Table 21)
PAPER_TASKS = {"hellaswag": "hellaswag", "piqa": "piqa", "boolq": "boolq", "mmlu": "mmlu",
               "commonsense_qa": "csqa", "race_high": "race_h", "race_middle": "race_m"}


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def chain_kept_pct(ckpt_dir: str | Path) -> float:
    """Percent of its model's parameters a checkpoint keeps: 100 − ``sparsity_pct`` of its ``pruning.json``
    (100 without one: a dense model)."""
    s = _json(Path(ckpt_dir) / "pruning.json").get("sparsity_pct")
    return 100.0 - float(s) if s is not None else 100.0


def row_record(row: Mapping[str, str], metrics: Mapping[str, Any], ckpt_dir: str | Path,
               base_dir: str | Path | None = None) -> dict[str, Any]:
    """One table row. ``base_dir``: the dense directory of the row's model when that model is derived (its
    ``pruning.json`` holds the earlier pruning step)."""
    d = Path(ckpt_dir)
    cfg = _json(d / "config.json")
    kept = chain_kept_pct(d)
    if base_dir is not None:
        kept = kept * chain_kept_pct(base_dir) / 100.0
    training = _json(d / "training.json")
    out: dict[str, Any] = {"Row": row["row"], "Model": row["model"], "Checkpoint": row["checkpoint"],
                           "Layers": cfg.get("num_hidden_layers"), "Params kept (%)": kept,
                           "Tokens seen": training.get("tokens_seen")}
    scores = {}
    for task, r in sorted((metrics.get("tasks") or {}).items()):
        if r.get("value") is not None:
            scores[task] = 100.0 * float(r["value"])
    out.update(scores)
    out["Avg"] = sum(scores.values()) / len(scores) if scores else None
    ppl = (metrics.get("perplexity") or {}).get("wikitext2") or {}
    out["Wiki-2 PPL"] = ppl.get("ppl")
    return out


def ours_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def load_paper(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / name)


def vs_paper(ours: pd.DataFrame, paper: pd.DataFrame, paper_rows: Mapping[str, str], key: str = "method"
             ) -> pd.DataFrame:
    """Long table: Row, task, ours, paper (Llama2-7B), difference, for each task both report.

    ``paper_rows`` maps our Row to the paper's row label (column ``key`` of ``paper``)."""
    out = []
    paper = paper[paper["model"] == PAPER_MODEL]
    for _, r in ours.iterrows():
        label = paper_rows.get(r["Row"])
        match = paper[paper[key] == label] if label is not None else paper.iloc[:0]
        for task, col in PAPER_TASKS.items():
            if task not in ours.columns or col not in paper.columns:
                continue
            theirs = float(match.iloc[0][col]) if len(match) and not pd.isna(match.iloc[0][col]) else None
            mine = r[task] if not pd.isna(r[task]) else None
            out.append({"Row": r["Row"], "Paper row": label, "Task": task, "Ours": mine,
                        f"Paper ({PAPER_MODEL})": theirs,
                        "Difference": None if mine is None or theirs is None else mine - theirs})
        if "avg" in paper.columns and len(match):
            out.append({"Row": r["Row"], "Paper row": label, "Task": "Avg (paper: OpenCompass categories)",
                        "Ours": r["Avg"], f"Paper ({PAPER_MODEL})": float(match.iloc[0]["avg"]), "Difference": None})
    return pd.DataFrame(out)


TABLE06_PAPER_ROWS = {"Dense*": "Dense*", "LaCo": "LaCo", "LaCo+post-train": "LaCo+post-train",
                      "LaCo+post-train+re-prune": "LaCo+post-train+re-prune"}


def table21_paper_rows(rows: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """Our Table 21 rows (post-trained checkpoints) -> the paper's pruner (LaCo / LLM-Pruner)."""
    out = {}
    for r in rows:
        if r["row"].endswith("+post-train"):
            method = r["row"].split("/")[0]
            out[r["row"]] = {"laco": "LaCo", "llm_pruner": "LLM-Pruner"}.get(method, method)
    return out
