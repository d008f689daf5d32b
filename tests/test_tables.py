"""Tables: Table 3, Avg/RPT, the results table, the paper join and the renderers."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from layerpuzzle.sparsity import specs_from_config
from layerpuzzle.tables import (
    TASK_COLUMNS,
    average,
    compare_results_with_paper,
    compare_sparsity_table,
    latex_table,
    load_paper_results,
    markdown_table,
    paper_sparsity_label,
    relative_performance,
    results_table,
    sparsity_table,
    write_table,
)
from layerpuzzle.tables.columns import PAPER_CSV_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
MODELS = {k: m for k, m in yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["models"].items()
          if m.get("source") != "derived"}  # derived models (re-pruning) are checkpoints, not paper models
SPECS = specs_from_config(MODELS)
PAPER_NAMES = {key: m["paper_name"] for key, m in MODELS.items()}
PAPER = load_paper_results()
TASK_CSV = [PAPER_CSV_COLUMNS[h] for h in TASK_COLUMNS.values()]


def paper_row(model: str, label: float, method: str) -> pd.Series:
    hit = PAPER[(PAPER["model"] == model) & (PAPER["sparsity_pct"] == label) & (PAPER["method"] == method)]
    assert len(hit) == 1
    return hit.iloc[0]


def record(model, method, target, removed, sp, values, variant="", ppl=(10.0, 8.0), stderr=0.01):
    """A metrics.json dict with task fractions ``values`` (None = task missing)."""
    tasks = {
        key: {"metric": "acc_norm", "value": v, "stderr": stderr, "n_samples": 40, "num_fewshot": 5 if key == "mmlu" else 0}
        for key, v in zip(TASK_COLUMNS, values)
        if v is not None
    }
    return {
        "model": model, "checkpoint": "dense" if method == "Dense" else f"{method}/{target}/{variant}",
        "method": method, "variant": variant, "target_pct": target, "removed_layers": removed, "sparsity_pct": sp,
        "tasks": tasks,
        "perplexity": {"c4": {"ppl": ppl[0], "n_windows": 8, "seqlen": 256},
                       "wikitext2": {"ppl": ppl[1], "n_windows": 8, "seqlen": 256}},
    }


# ---------------------------------------------------------------- Table 3


def test_sparsity_table_layout_and_removed():
    table = sparsity_table(SPECS, PAPER_NAMES)
    assert list(table.columns[:3]) == ["Model", "Size (B)", "#Blocks"]
    assert list(table.columns[3:6]) == ["~10% Sparsity (%)", "~10% #Removed", "~10% #Parameters (B)"]
    removed = {row["Model"]: (row["~10% #Removed"], row["~20% #Removed"], row["~30% #Removed"]) for _, row in table.iterrows()}
    assert removed == {
        "LLaMA-2-7B": (3, 7, 10), "LLaMA-2-13B": (4, 8, 12), "LLaMA-3-8B": (4, 7, 11), "Vicuna-7B": (3, 7, 10),
        "Mistral-7B": (3, 7, 10), "Qwen2.5-7B": (3, 7, 10), "Qwen3-4B": (4, 8, 12),
    }
    qwen3 = table.set_index("Model").loc["Qwen3-4B"]
    assert (qwen3["Size (B)"], qwen3["~20% Sparsity (%)"], qwen3["~20% #Parameters (B)"]) == (4.02, 20.07, 3.22)


def test_sparsity_comparison_flags_only_the_two_known_cells():
    cmp = compare_sparsity_table(SPECS, PAPER_NAMES)
    assert len(cmp) == 21
    assert (cmp["#Removed diff"] == 0).all() and (cmp["#Blocks diff"] == 0).all()
    failing = set(map(tuple, cmp.loc[~cmp["Agrees"], ["Model", "Target (%)"]].values.tolist()))
    assert failing == {("Vicuna-7B", 10), ("LLaMA-2-13B", 20)}
    vicuna = cmp[(cmp["Model"] == "Vicuna-7B") & (cmp["Target (%)"] == 10)].iloc[0]
    assert vicuna["Sparsity (%) paper"] == 9.18
    assert vicuna["Sparsity (%) diff"] == pytest.approx(9.0103 - 9.18, abs=1e-4)


# ---------------------------------------------------------------- Avg and RPT on the paper's rows


@pytest.mark.parametrize(
    "model,label,method,avg,rpt",
    [
        ("LLaMA-2-7B", 9.0, "Mag+", 53.53, 84.56),
        ("LLaMA-2-7B", 9.0, "MKA", 56.47, 91.39),
        ("LLaMA-2-7B", 30.0, "CoMe", 48.17, 76.47),
        ("Qwen3-4B", 30.1, "CoMe-P", 42.58, 64.43),
    ],
)
def test_avg_rpt_reproduce_paper_rows(model, label, method, avg, rpt):
    row, dense = paper_row(model, label, method), paper_row(model, 0.0, "Dense")
    scores, dense_scores = list(row[TASK_CSV]), list(dense[TASK_CSV])
    assert round(average(scores), 2) == avg == row["avg"]
    assert round(relative_performance(scores, dense_scores), 2) == rpt == row["rpt"]
    assert abs(100 * average(scores) / average(dense_scores) - rpt) > 0.05  # not the ratio of averages


def test_rpt_rejects_bad_input():
    with pytest.raises(ValueError):
        relative_performance([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        relative_performance([1.0], [0.0])


# ---------------------------------------------------------------- results table

DENSE = [0.50, 0.80, 0.60, 0.40, 0.75, 0.60, 0.50]
PRUNED = [0.25, 0.40, 0.30, 0.40, 0.75, 0.30, 0.50]  # ratios 1/2,1/2,1/2,1,1,1/2,1


def test_results_table_hand_computed():
    table = results_table([record("m", "CoMe", 30, 2, 29.5, PRUNED, ppl=(20.0, 15.5)), record("m", "Dense", 0, 0, 0.0, DENSE)])
    assert list(table.columns) == ["Model", "Sparsity (%)", "Method", "ARC-c", "ARC-e", "HellaS", "OBQA", "PIQA",
                                   "WinoG", "MMLU(5)", "Avg", "RPT", "C4", "Wiki-2", "Note",
                                   "Avg SE", "RPT SE", "vs Dense"]
    assert list(table["Method"]) == ["Dense", "CoMe"]
    dense, pruned = table.iloc[0], table.iloc[1]
    assert dense["Avg"] == round(415 / 7, 2) == 59.29 and dense["RPT"] == 100.0
    assert pruned["Avg"] == round(290 / 7, 2) == 41.43
    assert pruned["RPT"] == round(100 * 5 / 7, 2) == 71.43
    assert (pruned["ARC-c"], pruned["C4"], pruned["Wiki-2"], pruned["Sparsity (%)"]) == (25.0, 20.0, 15.5, 29.5)


def test_results_table_noise_columns_hand_computed():
    """Every task SE is 1 point: SE(Avg) = sqrt(7)/7; SE(RPT) by the delta method, term by term."""
    table = results_table([record("m", "CoMe", 30, 2, 29.5, PRUNED), record("m", "Dense", 0, 0, 0.0, DENSE)])
    dense, pruned = table.iloc[0], table.iloc[1]
    assert dense["Avg SE"] == pruned["Avg SE"] == round(math.sqrt(7) / 7, 2) == 0.38
    assert math.isnan(dense["RPT SE"]) and dense["vs Dense"] == ""
    # (s, d) = (25,50) (40,80) (30,60) (40,40) (75,75) (30,60) (50,50); term = (1/d)^2 + (s/d^2)^2
    terms = [1 / 50**2 + (25 / 50**2) ** 2, 1 / 80**2 + (40 / 80**2) ** 2, 1 / 60**2 + (30 / 60**2) ** 2,
             1 / 40**2 + (40 / 40**2) ** 2, 1 / 75**2 + (75 / 75**2) ** 2, 1 / 60**2 + (30 / 60**2) ** 2,
             1 / 50**2 + (50 / 50**2) ** 2]
    assert pruned["RPT SE"] == round(100 / 7 * math.sqrt(sum(terms)), 2) == 0.88
    assert pruned["vs Dense"] == "below Dense"  # Avg 41.43 vs 59.29, 2 SE of the difference = 1.07


def test_results_table_marks_differences_within_noise():
    """20 documents per task give SE ~ 10 points: a 5-point drop on one task is noise, 40 points on all is not."""
    near = [v - 0.05 if i == 0 else v for i, v in enumerate(DENSE)]
    far = [v - 0.40 for v in DENSE]
    rows = [record("m", "Dense", 0, 0, 0.0, DENSE, stderr=0.1), record("m", "SLEB", 30, 3, 30.0, near, stderr=0.1),
            record("m", "LaCo", 30, 3, 30.0, far, stderr=0.1), record("m", "MKA", 30, 3, 30.0, near, stderr=None)]
    table = results_table(rows).set_index("Method")
    assert table.loc["SLEB", "vs Dense"] == "within noise"
    assert table.loc["LaCo", "vs Dense"] == "below Dense"
    assert table.loc["MKA", "vs Dense"] == "" and math.isnan(table.loc["MKA", "Avg SE"])  # no SE: no verdict
    assert table.loc["SLEB", "Avg"] == round(100 * (sum(DENSE) - 0.05) / 7, 2)  # the scores themselves unchanged


def test_results_table_missing_values_and_notes():
    rows = [
        record("a", "CoMe", 10, 1, 9.0, PRUNED[:6] + [None]),  # no MMLU
        record("b", "SLEB", 10, 1, 9.0, PRUNED, ppl=(math.nan, math.inf)),  # no Dense row for b
        record("a", "Dense", 0, 0, 0.0, DENSE),
    ]
    table = results_table(rows).set_index(["Model", "Method"])
    a = table.loc[("a", "CoMe")]
    assert math.isnan(a["MMLU(5)"]) and math.isnan(a["Avg"]) and math.isnan(a["RPT"])
    assert "MMLU(5)" in a["Note"]
    b = table.loc[("b", "SLEB")]
    assert b["Avg"] == 41.43 and math.isnan(b["RPT"]) and "no Dense row" in b["Note"]
    assert math.isnan(b["C4"]) and b["Wiki-2"] == math.inf and "C4 PPL is nan" in b["Note"]


def test_results_table_row_order():
    methods = ["Zeta", "CoMe-P", "CoMe", "SLEB", "Mag+", "Alpha", "Dense", "FuseGPT-MI+F", "LaCo"]
    rows = [record("m", meth, 0 if meth == "Dense" else 30, 3, 0.0 if meth == "Dense" else 30.1, DENSE) for meth in methods]
    rows += [record("m", "CoMe", 10, 1, 9.9, DENSE), record("m", "CoMe", 30, 3, 30.1, DENSE, variant="p=inf"),
             record("k", "Dense", 0, 0, 0.0, DENSE)]
    table = results_table(rows, model_order=["m"])
    assert list(zip(table["Model"], table["Sparsity (%)"], table["Method"])) == [
        ("m", 0.0, "Dense"), ("m", 9.9, "CoMe"), ("m", 30.1, "Mag+"), ("m", 30.1, "SLEB"), ("m", 30.1, "FuseGPT-MI+F"),
        ("m", 30.1, "LaCo"), ("m", 30.1, "CoMe"), ("m", 30.1, "CoMe (p=inf)"), ("m", 30.1, "CoMe-P"),
        ("m", 30.1, "Alpha"), ("m", 30.1, "Zeta"), ("k", 0.0, "Dense"),
    ]


# ---------------------------------------------------------------- paper join


def test_paper_sparsity_labels():
    expected = {
        "LLaMA-2-7B": (9.0, 21.0, 30.0), "Vicuna-7B": (9.0, 21.0, 30.0), "LLaMA-2-13B": (9.8, 19.5, 29.2),
        "LLaMA-3-8B": (10.9, 19.0, 29.9), "Mistral-7B": (9.0, 21.1, 30.1), "Qwen2.5-7B": (9.2, 21.4, 30.6),
        "Qwen3-4B": (10.0, 20.1, 30.1),
    }
    for model, labels in expected.items():
        assert tuple(paper_sparsity_label(model, t) for t in (10, 20, 30)) == labels
        assert paper_sparsity_label(model, 0) == 0.0
    assert paper_sparsity_label("GPT-2", 10) is None


def test_paper_join_finds_the_matching_rows():
    come = [0.3524, 0.5446, 0.5656, 0.3540, 0.6888, 0.6117, 0.2550]  # LLaMA-2-7B 30.0% CoMe, Table 8
    dense = [0.4633, 0.7454, 0.7599, 0.4420, 0.7905, 0.6906, 0.4560]
    rows = [
        record("llama2-7b", "CoMe", 30, 10, 30.03, [v + 0.01 for v in come], ppl=(20.0, 16.0)),
        record("llama2-7b", "Dense", 0, 0, 0.0, dense, ppl=(7.27, 5.47)),
        record("vicuna-7b", "MKA", 10, 3, 9.01, come),
        record("tiny", "CoMe", 10, 4, 10.5, come),
        record("mistral-7b", "LaCo", 20, 7, 21.08, come),
    ]
    names = {"llama2-7b": "LLaMA-2-7B", "vicuna-7b": "Vicuna-7B", "tiny": "LLaMA-2-7B", "mistral-7b": "Mistral-7B"}
    cmp = compare_results_with_paper(rows, names).set_index(["Model", "Method"])

    ours = cmp.loc[("llama2-7b", "CoMe")]
    assert (ours["Paper sparsity (%)"], ours["#Removed"], ours["Paper #Removed"]) == (30.0, 10, 10)
    assert (ours["ARC-c"], ours["ARC-c paper"], ours["ARC-c diff"]) == (36.24, 35.24, 1.0)
    assert (ours["C4 paper"], ours["C4 diff"], ours["Wiki-2 diff"]) == (19.93, 0.07, -0.53)
    assert ours["RPT paper"] == 76.47 and ours["Note"] == ""
    assert cmp.loc[("llama2-7b", "Dense"), "Avg diff"] == 0.0

    vicuna = cmp.loc[("vicuna-7b", "MKA")]  # Table 3 prints 9.18 for this target; the row label is 9.0
    assert vicuna["Paper sparsity (%)"] == 9.0
    assert vicuna["OBQA paper"] == paper_row("Vicuna-7B", 9.0, "MKA")["obqa"]

    tiny = cmp.loc[("tiny", "CoMe")]  # a stand-in model mapped to LLaMA-2-7B at ~10%
    assert tiny["ARC-c paper"] == 44.11 and "removed layers differ (ours 4, paper 3)" in tiny["Note"]

    laco = cmp.loc[("mistral-7b", "LaCo")]  # LaCo was only run on LLaMA-2
    assert math.isnan(laco["ARC-c paper"]) and "no paper row" in laco["Note"]


# ---------------------------------------------------------------- rendering

SMALL = pd.DataFrame({"Name": ["a|b", "x_y & 5%"], "#N": [3, 4], "Score": [1.234, math.nan], "PPL": [math.inf, 2.0]})


def test_markdown_table():
    text = markdown_table(SMALL, caption="Caption 1")
    assert text.splitlines() == [
        "**Caption 1**",
        "",
        "| Name | #N | Score | PPL |",
        "| --- | ---: | ---: | ---: |",
        r"| a\|b | 3 | 1.23 | inf |",
        "| x_y & 5% | 4 |  | 2.00 |",
    ]


def test_latex_table_escapes():
    text = latex_table(SMALL, caption="10% of a_b & c")
    lines = text.splitlines()
    assert r"\caption{10\% of a\_b \& c}" in lines
    assert r"\begin{tabular}{lrrr}" in lines
    assert r"Name & \#N & Score & PPL \\" in lines
    assert r"x\_y \& 5\% & 4 &  & 2.00 \\" in lines
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert latex_table(SMALL).startswith(r"\begin{tabular}")


def test_write_table(tmp_path):
    paths = write_table(SMALL, tmp_path / "out" / "t", caption="C")
    assert [p.name for p in paths] == ["t.csv", "t.md", "t.tex"]
    back = pd.read_csv(paths[0])
    assert list(back["Name"]) == ["a|b", "x_y & 5%"] and back["Score"].isna().tolist() == [False, True]
    assert paths[1].read_text() == markdown_table(SMALL, caption="C")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t.csv", "t.md", "t.tex"]  # no temp files left
