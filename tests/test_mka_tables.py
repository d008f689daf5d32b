"""MKA's tables (layerpuzzle.tables.mka): CR beside sparsity, Tables 1-4 and Fig. 6 on synthetic records, exact
cells computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from layerpuzzle.sparsity import ArchSpec, layer_params, total_params
from layerpuzzle.tables.mka import (curve_table, curve_wide, mka_cr_pct, param_sparsity_pct, quant_factor,
                                    subject_accuracy, subject_table, table1, table2)
from layerpuzzle.tables.paper import PAPER_DIR

# 4 layers; per layer: q,k,v,o 4·16 = 64, MLP 3·4·8 = 96, norms 8 -> 168; total 4·168 + 10·4 (tied) + 4 = 716
TINY = ArchSpec(hidden_size=4, num_hidden_layers=4, num_attention_heads=1, num_key_value_heads=1, head_dim=4,
                intermediate_size=8, vocab_size=10, tie_word_embeddings=True)
ARCHS = {"tiny": TINY}
PAPER1 = pd.read_csv(PAPER_DIR / "mka" / "mka_table01_quant.csv")
PAPER2 = pd.read_csv(PAPER_DIR / "mka" / "mka_table02_llama3_8b_benchmarks.csv")
PAPER34 = pd.read_csv(PAPER_DIR / "mka" / "mka_tables03_04_mmlu_curves.csv")


def rec(**scores):
    return {"tasks": {t: {"value": v} for t, v in scores.items()}}


def test_tiny_counts_by_hand():
    assert layer_params(TINY) == 168 and total_params(TINY) == 716


def test_quant_factor_is_16_over_weight_bits():
    assert quant_factor("gptq-w4a16-g64") == 4 == quant_factor("awq-w4a16-g128")
    assert quant_factor("smoothquant-w8a8-a0.5") == 2
    assert quant_factor("smoothquant-w4a8-g64-a0.5") == 4
    assert quant_factor("sparsegpt-43.75") == 1 == quant_factor(None)
    with pytest.raises(ValueError, match="unknown scheme"):
        quant_factor("hqq-w4")


def test_cr_and_sparsity_by_hand():
    # CR = (L - L_kept/Q)/L: 2 of 4 removed, int4 -> (4 - 2/4)/4 = 87.5 %; unquantized -> 50 %
    assert mka_cr_pct(TINY, 2, "gptq-w4a16-g64") == 87.5
    assert mka_cr_pct(TINY, 2) == 50.0
    assert mka_cr_pct(TINY, 2, "smoothquant-w8a8-a0.5") == 75.0  # Q = 2
    assert mka_cr_pct(TINY, 0, "sparsegpt-50") == 50.0
    with pytest.raises(ValueError, match="no MKA compression ratio"):
        mka_cr_pct(TINY, 1, "sparsegpt-50")
    # sparsity: 2·168/716; quantization removes nothing; SparseGPT 50 % of 4·(168 − 8) Linear weights
    assert param_sparsity_pct(TINY, 2, "gptq-w4a16-g64") == param_sparsity_pct(TINY, 2) == 100 * 336 / 716
    assert param_sparsity_pct(TINY, 0, "sparsegpt-50") == pytest.approx(100 * 320 / 716, abs=1e-12)


def test_table1_cells():
    points = [
        {"model": "tiny", "method": "Vanilla", "layers_removed": 0, "scheme": None, "record": rec(mmlu=0.3)},
        {"model": "tiny", "method": "MKA", "layers_removed": 2, "scheme": None, "record": rec(mmlu=0.4)},
        {"model": "tiny", "method": "MKA", "layers_removed": 2, "scheme": "gptq-w4a16-g64", "record": rec(mmlu=0.5)},
        {"model": "tiny", "method": "ShortGPT", "layers_removed": 2, "scheme": "smoothquant-w8a8-a0.5",
         "record": rec(mmlu=0.25)},
        {"model": "tiny", "method": "ShortGPT", "layers_removed": 2, "scheme": "awq-w4a16-g64", "record": None},
    ]
    t = table1(points, ARCHS, PAPER1, "Llama3-8B").set_index(["Method", "Quantization"])
    v = t.loc[("Vanilla", "none")]
    assert (v["Layers kept"], v["CR (%)"], v["MMLU"], v["Paper MMLU"], v["Diff"]) == ("4/4", 0.0, 30.0, 66.29, -36.29)
    assert v["Paper layers kept"] == "32/32"
    g = t.loc[("MKA", "GPTQ")]
    assert (g["Layers kept"], g["CR (%)"], g["Sparsity (%)"], g["MMLU"]) == ("2/4", 87.5, 46.93, 50.0)
    assert (g["Paper layers kept"], g["Paper CR (%)"], g["Paper MMLU"], g["Diff"]) == ("18/32", 85.94, 62.98, -12.98)
    assert g["Note"] == ""
    s = t.loc[("ShortGPT", "SmoothQuant")]
    assert (s["CR (%)"], s["Paper MMLU"], s["Diff"]) == (75.0, 26.54, -1.54)
    assert s["Note"].startswith("Q = 2 (8-bit weights")
    n = t.loc[("MKA", "none")]
    assert (n["CR (%)"], n["MMLU"], n["Paper model"]) == (50.0, 40.0, "") and math.isnan(n["Paper MMLU"])
    a = t.loc[("ShortGPT", "AWQ")]
    assert math.isnan(a["MMLU"]) and a["Paper MMLU"] == 26.22 and a["Note"] == "not evaluated"


def test_table2_cells():
    points = [
        {"model": "tiny", "method": "Vanilla", "layers_removed": 0, "scheme": None, "level": 0, "paper_cr": 34.375,
         "record": rec(mmlu=0.3, piqa=0.6, hellaswag=0.4, race_high=0.2, boolq=0.7)},
        {"model": "tiny", "method": "SparseGPT", "layers_removed": 0, "scheme": "sparsegpt-50", "level": 1,
         "paper_cr": 37.5, "record": rec(mmlu=0.25, piqa=0.5, hellaswag=0.3, race_high=0.2, boolq=0.6)},
        {"model": "tiny", "method": "MKA", "layers_removed": 1, "scheme": None, "level": 0, "paper_cr": 34.375,
         "record": rec(mmlu=0.35)},
    ]
    t = table2(points, ARCHS, PAPER2).set_index("Method")
    v = t.loc["Vanilla"]
    assert (v["CR (%)"], v["Sparsity (%)"], v["BoolQ"], v["Paper BoolQ"], v["Note"]) == (0.0, 0.0, 70.0, 66.79, "")
    s = t.loc["SparseGPT"]
    assert (s["Level"], s["CR (%)"], s["Sparsity (%)"], s["Paper CR (%)"]) == (2, 50.0, 44.69, 37.5)
    assert [s[c] for c in ("MMLU", "PIQA", "HellaSwag", "RACE-H", "BoolQ")] == [25.0, 50.0, 30.0, 20.0, 60.0]
    assert [s[f"Paper {c}"] for c in ("MMLU", "PIQA", "HellaSwag", "RACE-H", "BoolQ")] == [41.95, 56.23, 28.63,
                                                                                          37.84, 52.4]
    m = t.loc["MKA"]
    assert (m["CR (%)"], m["Sparsity (%)"], m["MMLU"], m["Paper MMLU"], m["Paper HellaSwag"]) == (25.0, 23.46, 35.0,
                                                                                                 64.87, 51.32)
    assert math.isnan(m["PIQA"]) and math.isnan(m["Paper PIQA"])
    assert m["Note"].startswith("not evaluated on PIQA, HellaSwag, RACE-H, BoolQ (add them to evaluation.tasks)")


def test_curves_cells_and_wide_layout():
    points = [{"model": "tiny", "method": "Vanilla", "layers_removed": 0, "record": rec(mmlu=0.3)}]
    points += [{"model": "tiny", "method": m, "layers_removed": k, "record": rec(mmlu=v)}
               for m, k, v in (("MKA", 1, 0.3), ("MKA", 2, 0.2), ("Reverse", 1, 0.25), ("Reverse", 2, 0.2))]
    long = curve_table(points, ARCHS, PAPER34, "Llama3-8B")
    row = long[(long["Method"] == "Reverse") & (long["Layers removed"] == 1)].iloc[0]
    assert (row["CR (%)"], row["MMLU"], row["Paper CR (%)"], row["Paper MMLU"], row["Diff"]) == (25.0, 25.0, 3.12,
                                                                                                  66.12, -41.12)
    wide = curve_wide(long).set_index("Layers removed")
    assert list(wide.columns) == ["Model", "CR (%)", "Sparsity (%)", "MKA", "Reverse", "Paper MKA", "Paper Reverse"]
    assert wide.loc[0, ["MKA", "Reverse", "Paper MKA", "Paper Reverse"]].tolist() == [30.0, 30.0, 66.29, 66.29]
    assert wide.loc[2, ["MKA", "Reverse", "Paper MKA", "Paper Reverse"]].tolist() == [20.0, 20.0, 66.26, 66.33]


def test_subject_accuracy_from_samples():
    docs = [("college_physics", 1), ("college_physics", 0), ("college_physics", 1), ("college_biology", 0),
            ("anatomy", 1)]
    raw = {"samples": {"mirror_mmlu": [{"doc": {"subject": s}, "acc": a} for s, a in docs]}}
    acc = subject_accuracy(raw, ["college_physics", "college_biology", "college_medicine"])
    assert acc == {"college_physics": (pytest.approx(200 / 3), 3), "college_biology": (0.0, 1),
                   "college_medicine": (None, 0)}
    t = subject_table([{"model": "tiny", "method": "MKA", "layers_removed": 3, "raw": raw}], ["college_physics"])
    assert t.iloc[0].to_dict() == {"Model": "tiny", "Method": "MKA", "Layers removed": 3,
                                   "Subject": "college_physics", "Accuracy (%)": 66.67, "Documents": 3}
    with pytest.raises(ValueError, match="log_samples"):
        subject_accuracy({"results": {}})


def test_similarity_frame_round_trip():
    import numpy as np

    from layerpuzzle.methods.mka.analyses import matrix_from_frame, similarity_frame

    M = np.arange(9.0).reshape(3, 3)
    df = similarity_frame({"cosine": M, "euclidean": 2 * M})
    assert len(df) == 18
    assert df[(df.measure == "cosine") & (df.i == 1) & (df.j == 2)]["value"].item() == 5.0
    assert (matrix_from_frame(df, "euclidean") == 2 * M).all()


def test_figures_write_pngs(tmp_path):
    import numpy as np

    from layerpuzzle.figures.mka import curve_figure, matrices_figure, subject_figure

    points = [{"model": "tiny", "method": "Vanilla", "layers_removed": 0, "record": rec(mmlu=0.3)},
              {"model": "tiny", "method": "MKA", "layers_removed": 1, "record": rec(mmlu=0.2)}]
    curve_figure(curve_table(points, ARCHS, PAPER34, "Llama3-8B"), tmp_path / "f2.png", "t")
    matrices_figure({"NPIB, before": np.eye(3), "cosine, before": np.ones((3, 3))}, tmp_path / "f3.png", "t")
    raw = {"samples": {"m": [{"doc": {"subject": "college_physics"}, "acc": 1}]}}
    subject_figure(subject_table([{"model": "tiny", "method": "MKA", "layers_removed": 1, "raw": raw}],
                                 ["college_physics"]), tmp_path / "f6.png", "t")
    for name in ("f2", "f3", "f6"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
