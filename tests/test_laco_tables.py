"""The LaCo paper's tables (layerpuzzle.tables.laco) on synthetic records: exact cells, the paper beside ours."""
import pandas as pd
import pytest

from layerpuzzle.tables import laco as L


def metrics(scores: dict, sparsity=0.0, removed=0, layers=30, ppl=None):
    return {"sparsity_pct": sparsity, "removed_layers": removed, "dense_layers": layers,
            "tasks": {t: {"value": v} for t, v in scores.items()},
            "perplexity": {k: {"ppl": v} for k, v in (ppl or {}).items()}}


def eff(mem, tps, device="CPU"):
    return {"device": device, "dtype": "float32", "memory_bytes": mem * 2 ** 20, "memory_mib": float(mem),
            "tokens_per_s": tps}


ENTRIES = [
    {"model": "m", "pruner": "LaCo", "checkpoint": "laco/sp30/x",
     "metrics": metrics({"hellaswag": 0.30, "piqa": 0.60, "mmlu": 0.25, "arc_easy": 0.9}, 28.95, 11,
                        ppl={"wikitext2": 40.0, "c4": 80.0}),
     "pruning": {"pruning_seconds": 10.0}, "efficiency": eff(300, 30.0)},
    {"model": "m", "pruner": "Dense", "checkpoint": "dense",
     "metrics": metrics({"hellaswag": 0.40, "piqa": 0.80, "mmlu": 0.50, "arc_easy": 0.9}, ppl={"wikitext2": 20.0}),
     "pruning": None, "efficiency": eff(400, 20.0)},
    {"model": "m", "pruner": "LLM-Pruner", "checkpoint": "llm_pruner/sp28.9/default",
     "metrics": metrics({"hellaswag": 0.20, "piqa": 0.40}, 28.9, 0, ppl={"wikitext2": 50.0}),
     "pruning": {"pruning_seconds": 5.0}, "efficiency": eff(320, 10.0)},
]


def test_table1_cells():
    t = L.table1(ENTRIES).set_index("Pruner")
    assert list(t.index) == ["Dense", "LLM-Pruner", "LaCo"]  # LaCo's order
    assert t.loc["Dense", "HellaSwag"] == pytest.approx(40.0) and t.loc["Dense", "MMLU"] == pytest.approx(50.0)
    assert t.loc["LaCo", "Layers"] == 19 and t.loc["LaCo", "Ratio (%)"] == 28.95 and t.loc["LLM-Pruner", "Layers"] == 30
    assert t.loc["LaCo", "Avg"] == pytest.approx((30 + 60 + 25) / 3) and t.loc["LaCo", "Avg over"] == "3 of 14"
    assert t.loc["LLM-Pruner", "Avg"] == pytest.approx(30.0) and t.loc["LLM-Pruner", "Avg over"] == "2 of 14"
    assert pd.isna(t.loc["LLM-Pruner", "MMLU"]) and pd.isna(t.loc["Dense", "BoolQ"])
    assert "ARC-e" not in t.columns  # not one of LaCo's benchmarks


def test_table22_and_table2_cells():
    t22 = L.table22(ENTRIES).set_index("Pruner")
    assert list(t22.index) == ["LLM-Pruner", "LaCo"]
    assert t22.loc["LaCo", "HellaSwag"] == pytest.approx(75.0) and t22.loc["LaCo", "MMLU"] == pytest.approx(50.0)
    t2 = L.table2(ENTRIES).set_index("Pruner")
    assert t2.loc["LaCo", "Per. (%)"] == pytest.approx((75 + 75 + 50) / 3)
    assert t2.loc["Dense", "Per. (%)"] == pytest.approx(100.0)
    assert t2.loc["LaCo", "Reasoning"] == pytest.approx(45.0)  # (HellaSwag 30 + PIQA 60) / 2 of {CMNLI, HS, PIQA}
    assert t2.loc["LaCo", "Examination"] == pytest.approx(25.0) and pd.isna(t2.loc["LaCo", "Knowledge"])
    assert t2.loc["LLM-Pruner", "Per. (%)"] == pytest.approx(50.0)


def test_table3_table4_table20_cells():
    t3 = L.table3(ENTRIES).set_index("Pruner")
    assert t3.loc["LaCo", "Wiki-2 / Dense"] == pytest.approx(2.0) and t3.loc["LaCo", "C4"] == 80.0
    assert pd.isna(t3.loc["Dense", "C4"])
    t4 = L.table4(ENTRIES).set_index("Pruner")
    assert list(t4.index) == ["LLM-Pruner", "LaCo"]
    assert t4.loc["LLM-Pruner", "Time / LaCo"] == pytest.approx(0.5) and t4.loc["LaCo", "Pruning time (s)"] == 10.0
    t20 = L.table20(ENTRIES).set_index("Pruner")
    assert t20.loc["LaCo", "Memory / Dense"] == pytest.approx(0.75) and t20.loc["LaCo", "Speed / Dense"] == 1.5
    assert t20.loc["LLM-Pruner", "Slower"] == "↓" and t20.loc["LaCo", "Slower"] == "" and t20.loc["Dense", "Slower"] == ""
    assert t20.loc["LaCo", "Device"] == "CPU"
    other = [dict(e) for e in ENTRIES]
    other[0] = {**other[0], "efficiency": eff(300, 30.0, device="CUDA")}  # never a ratio across devices
    assert pd.isna(L.table20(other).set_index("Pruner").loc["LaCo", "Memory / Dense"])


def test_paper_csvs_satisfy_the_papers_own_averages():
    """LaCo Table 2's Avg = mean of the Table 1 row (14 benchmarks), Per. = mean of the Table 22 row."""
    t1 = L.load_laco_paper("table01").set_index(["model", "pruner"])
    t2 = L.load_laco_paper("table02").set_index(["model", "pruner"])
    t22 = L.load_laco_paper("table22").set_index(["model", "pruner"])
    cols = [c for c, _, _ in L.LACO_BENCHMARKS]
    checked = 0
    for key, row in t2.iterrows():
        if key in t22.index:
            assert t1.loc[key, cols].astype(float).mean() == pytest.approx(row["avg"], abs=0.01), key
            assert t22.loc[key, cols].astype(float).mean() == pytest.approx(row["per_pct_of_dense"], abs=0.01), key
            checked += 1
    assert checked == 12


def test_paper_rows_in_our_layout():
    t1 = L.paper_rows("table01")
    laco = t1[("Llama2-7B", "LaCo")]
    assert laco["HellaSwag"] == 55.69 and laco["WSC_P"] == 40.38 and laco["Race-M"] == 23.61 and laco["Layers"] == 23
    assert laco["Avg"] == pytest.approx((55.69 + 69.80 + 40.38 + 45.70 + 64.07 + 26.45 + 22.61 + 23.61) / 8)
    assert L.paper_rows("table04")[("Llama2-7B", "SliceGPT")]["Time / LaCo"] == pytest.approx(313 / 14.7)
    t20 = L.paper_rows("table20")[("Llama2-13B", "LaCo")]
    assert t20["Memory / Dense"] == pytest.approx(19422 / 25902) and t20["Speed / Dense"] == pytest.approx(38.65 / 29.98)
    assert L.paper_rows("table03")[("Llama2-7B", "LaCo")]["Wiki-2 / Dense"] == pytest.approx(13.93 / 4.46)
    t2 = L.paper_table2_rows()[("Llama2-7B", "LaCo")]
    assert t2["Avg (14)"] == 37.46 and t2["Per. (14) (%)"] == 80.28
    assert t2["Knowledge"] == pytest.approx((45.70 + 64.07) / 2)  # CSQA, BoolQ: both available


def test_beside_the_paper_same_model_and_reference_only():
    t1 = L.table1(ENTRIES)
    paper = {("Llama2-7B", "Dense*"): {"HellaSwag": 71.35}, ("Llama2-7B", "LaCo"): {"HellaSwag": 55.69}}
    same = L.beside_paper(t1, paper, {"m": L.paper_match("LLaMA-2-7B")}, ["HellaSwag"]).set_index("Pruner")
    assert same.loc["Dense", "HellaSwag paper"] == 71.35  # our Dense beside the authors' re-run Dense*
    assert same.loc["LaCo", "HellaSwag diff"] == pytest.approx(30.0 - 55.69)
    assert same.loc["LaCo", "Compared"] == "same model" and pd.isna(same.loc["LLM-Pruner", "HellaSwag paper"])
    ref = L.beside_paper(t1, paper, {"m": L.paper_match(None, "Llama2-7B")}, ["HellaSwag"]).set_index("Pruner")
    assert ref.loc["LaCo", "HellaSwag [Llama2-7B]"] == 55.69
    assert not any(c.endswith((" paper", " diff")) for c in ref.columns)  # nothing for the audit to hold us to
    assert L.paper_match("LLaMA-2-13B") == L.PaperMatch("Llama2-13B", True)
    assert L.paper_match("LLaMA-3-8B", "Baichuan2-7B") == L.PaperMatch("Baichuan2-7B", False)


# ------------------------------------------------------------------ bad input, rejected before any job runs
@pytest.mark.parametrize("update, message", [
    ({"laco_tables": {"target": 1.2}}, "`laco_tables.target`: value 1.2 is not allowed; it must be < 1"),
    ({"laco_tables": {"target": 0}}, "`laco_tables.target`: value 0 is not allowed; it must be > 0"),
    ({"laco_tables": {"width_target": 1.0}}, "`laco_tables.width_target`: value 1.0 is not allowed"),
    ({"laco_tables": {"targets": {"smollm2-135m": -0.1}}}, "`laco_tables.targets.smollm2-135m`: value -0.1"),
    ({"laco_tables": {"models": ["gpt5"]}}, "`laco_tables.models[0]`: value 'gpt5' is not a model; allowed: smollm2-135m"),
    ({"laco_tables": {"laco_variant": "nope"}},
     "`laco_tables.laco_variant`: value 'nope' is not the label of a methods.laco variant; allowed: '', 'released'"),
    ({"laco_tables": {"paper_model": "GPT-4"}}, "`laco_tables.paper_model`: value 'GPT-4' is not allowed; allowed: Llama2-7B"),
    ({"efficiency": {"new_tokens": 0}}, "`efficiency.new_tokens`: value 0 is not allowed; it must be >= 1"),
    ({"efficiency": {"dtype": "int8"}}, "`efficiency.dtype`: value 'int8' is not allowed; allowed: auto, float32"),
])
def test_bad_laco_table_and_efficiency_settings_are_rejected(update, message):
    from layerpuzzle.config import ConfigError, check_references

    from conftest import load_validated_config

    with pytest.raises(ConfigError, match=__import__("re").escape(message)):
        check_references(load_validated_config(**update))


def test_plan_picks_laco_and_the_baselines_at_lacos_achieved_ratio():
    from conftest import default_plan

    plan = default_plan()
    assert plan.laco_table_checkpoints("smollm2-135m") == {
        "Dense": "dense", "LLM-Pruner": "llm_pruner/sp28.9/default", "SliceGPT": "slicegpt/sp28.9/default",
        "LaCo": "laco/sp30/variant=described"}
    assert plan.table_files("laco_table01")[0] not in plan.all_table_outputs()  # an extra target by default
    included = default_plan(laco_tables={"in_all_tables": True})
    assert included.table_files("laco_table01")[0] in included.all_table_outputs()
    assert plan.efficiency_path("smollm2-135m", "dense") == "results/smollm2-135m/efficiency/dense/efficiency.json"
    released = default_plan(laco_tables={"laco_variant": "released", "width_target": None, "in_all_tables": False})
    assert released.laco_table_checkpoints("smollm2-135m")["LaCo"] == "laco/sp30/variant=released"
    assert released.laco_width_target("smollm2-135m") == 0.3  # shape unknown before preparing: LaCo's target
    assert released.table_files("laco_table01")[0] not in released.all_table_outputs()
    # a shape the config fixes: LaCo's achieved sparsity, rounded down to 0.1 % (LLaMA-2-7B: 9 of 32 layers)
    paper = default_plan(models={"m": {"source": "hub", "repo_id": "x", "architecture": {
        "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
        "head_dim": 128, "intermediate_size": 11008, "vocab_size": 32000, "tie_word_embeddings": False}}},
        run={"models": ["m"]}, laco_tables={"target": 0.27})
    assert paper.laco_width_target("m") == 0.27 and paper.laco_table_checkpoints("m")["LLM-Pruner"] == "llm_pruner/sp27/default"
