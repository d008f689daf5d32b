"""LaCo's ratio sweeps, ablations, Table 14 and Figs. 4-5 (docs/analyses.md): plans, grids, table cells, config
checks, the drop / fixed-plan collapse and the analysis jobs on a tiny random model."""
import copy
import json
import math

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, default_plan
from layerpuzzle.config import ConfigError, check_references, validate_config
from layerpuzzle.methods.laco.grids import GRID_TABLES, grid_points, ratio_points
from layerpuzzle.methods.laco.merge_plan import check_plan, parse_plan, plan_groups, shift_plan
from layerpuzzle.tables.laco_grids import (laco_distance_table, laco_grid_table, laco_grid_tables, load_paper_grid,
                                           load_paper_table14)

SCHEMA = REPO / "config" / "schema.yaml"


# ------------------------------------------------------------------ merge plans (Table 16)
def test_plan_parsing_groups_and_shift():
    assert parse_plan("29-32+13-16+21-24") == [(13, 16), (21, 24), (29, 32)]
    assert plan_groups("2-3+5-7", 8) == [[0], [1, 2], [3], [4, 5, 6], [7]]
    assert shift_plan("13-16+21-24+29-32", 32, 30) == "11-14+19-22+27-30"
    assert shift_plan("13-16+21-24+29-32", 32, 8) == "5-8"  # the ranges below layer 1 are left out
    assert check_plan("11-14+19-22+27-30", 30) == [(11, 14), (19, 22), (27, 30)]


@pytest.mark.parametrize("text, n, message", [
    ("1-4+4-6", 8, r"`plan`: value '1-4\+4-6' overlaps itself \(1-4 and 4-6 share layer 4\); allowed: 1-based"),
    ("5-9", 8, r"`plan`: value '5-9' leaves the model: 5-9 beyond its 8 layers; allowed: .*every layer in 1\.\.8"),
    ("3-3", 8, r"range 3-3 merges nothing"),
    ("0-2", 8, r"is not a merge plan; allowed"),
])
def test_bad_plans_name_key_value_and_allowed(text, n, message):
    with pytest.raises(ValueError, match=message):
        check_plan(text, n)


# ------------------------------------------------------------------ grids
def test_grid_points_set_one_key_on_base():
    abl = default_plan().method_cfg("laco")["ablations"]
    base = abl["base"]
    c = dict(grid_points("laco_table10_c", abl, 30))
    assert c["C=1"] == {**base, "merge_layers": 2, "merge": "drop"}  # the paper's C = 1 row is the drop row
    assert c["C=5"] == {**base, "merge_layers": 5}
    assert dict(grid_points("laco_table12_d", abl, 30))["Round2"] == {**base, "sentence_seed": 2}
    (rule, plan), (laco, settings) = grid_points("laco_table16_rule", abl, 30)
    assert plan["plan"] == "11-14+19-22+27-30" and "stop_at_target" not in plan and settings == base
    assert [t for t, _ in ratio_points(abl)] == [0.12, 0.271, 0.45]
    assert ratio_points(abl)[2][1]["merge_layers"] == 6 and ratio_points(abl)[2][1]["threshold"] == 0.45
    assert set(GRID_TABLES) == {"laco_table10_c", "laco_table11_i", "laco_table12_d", "laco_table13_t",
                                "laco_table15_drop", "laco_table16_rule", "laco_table17_source", "laco_table18_size"}


def test_embedded_default_grid_checkpoints_are_paths_of_their_settings():
    plan = default_plan()
    pts = plan.laco_grid_points("laco_table16_rule")
    assert pts[0] == ("smollm2-135m", "Rule (11-14, 19-22, 27-30)",
                      "laco/sp27/plan=11-14+19-22+27-30,sentence_count=10,sentence_seed=0,sentence_source=wikipedia,"
                      "variant=described")
    slug = pts[0][2].split("/", 2)[2]
    assert plan.variant("laco", slug, "smollm2-135m").settings["plan"] == "11-14+19-22+27-30"  # read back
    assert len(plan.laco_sentences("smollm2-135m", slug)) == 10
    # the configured variants keep the notebook's 5 sentences (their params do not move)
    assert plan.laco_sentences("smollm2-135m", "variant=described") == plan.method_cfg("laco")["sentences"]


# ------------------------------------------------------------------ config checks (before any job runs)
def _cfg(**laco):
    c = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    c["models"]["tiny"] = {"source": "random", "arch": "llama"}  # 8 layers
    c["run"].update(models=["tiny"], table3_models=["tiny"])
    c["methods"]["laco"] = laco
    return c


@pytest.mark.parametrize("laco, message", [
    ({"ablations": {"interval": [2, 0]}}, r"`methods\.laco\.ablations\.interval\[1\]`: value 0 is not allowed; it must be >= 1"),
    ({"ablations": {"threshold": [1.5]}}, r"`methods\.laco\.ablations\.threshold\[0\]`: value 1\.5 is not allowed; it must be <= 1"),
    ({"ablations": {"sentence_count": [5000]}}, r"`methods\.laco\.ablations\.sentence_count\[0\]`: value 5000"),
    ({"variants": [{"variant": "described", "merge": "average"}]},
     r"`methods\.laco\.variants\[0\]\.merge`: value 'average' is not allowed; allowed: rdsc, drop"),
])
def test_grid_values_outside_their_range_are_rejected(laco, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_cfg(**laco), SCHEMA)


@pytest.mark.parametrize("laco, message", [
    ({"variants": [{"variant": "described", "plan": "1-3+3-4"}]},
     r"`methods\.laco\.variants\[0\]\.plan`: value '1-3\+3-4' overlaps itself"),
    ({"variants": [{"variant": "described", "plan": "6-9"}]},
     r"`methods\.laco\.variants\[0\]\.plan`: value '6-9' leaves the model: 6-9 beyond its 8 layers"),
    ({"ablations": {"rule_plan_by_model": {"tiny": "2-5+5-8"}}}, r"rule_plan_by_model\.tiny`: value '2-5\+5-8' overlaps"),
    ({"ablations": {"rule_plan": "13-16+15-18"}}, r"rule_plan`: value '13-16\+15-18' overlaps itself"),
    ({"ablations": {"rule_plan": "30-33"}}, r"rule_plan`: value '30-33' leaves the model: 30-33 beyond its 32 layers"),
])
def test_plans_that_overlap_or_leave_the_model_are_rejected(laco, message):
    c = validate_config(_cfg(**laco), SCHEMA)
    with pytest.raises((ConfigError, ValueError), match=message):
        check_references(c)


def test_a_fitting_plan_passes():
    check_references(validate_config(_cfg(ablations={"rule_plan": "2-3+5-7", "rule_plan_layers": 8},
                                          variants=[{"variant": "described", "plan": "2-3+5-7"}]), SCHEMA))


# ------------------------------------------------------------------ table builders (exact cells)
def _rec(model, removed, **scores):
    return {"model": model, "removed_layers": removed, "dense_layers": 30, "sparsity_pct": 3.0 * removed,
            "tasks": {t: {"value": v} for t, v in scores.items()}}


def test_ablation_table_cells_beside_the_papers():
    points = [("m", "C=1", _rec("m", 7, boolq=0.5, piqa=0.625, hellaswag=0.25)),
              ("m", "C=4", _rec("m", 8, piqa=0.6)),
              ("m", "C=9", _rec("m", 9, piqa=0.5))]
    df = laco_grid_table("laco_table10_c", "C", points, load_paper_grid("laco_table10_c", "10"))
    first = df.iloc[0]
    assert (first["Source"], first["C"], first["Layers"], first["#Removed"]) == ("ours", "C=1", 23, 7)
    assert (first["BoolQ"], first["PIQA"], first["HellaSwag"]) == (50.0, 62.5, 25.0)
    assert (first["BoolQ paper"], first["PIQA paper"], first["HellaSwag paper"]) == (52.57, 68.17, 48.61)
    second = df.iloc[1]
    assert math.isnan(second["BoolQ"]) and second["PIQA"] == 60.0 and second["BoolQ paper"] == 64.07
    assert df.iloc[2]["Note"] == "no paper row for this setting" and math.isnan(df.iloc[2]["PIQA paper"])
    # the paper's C = 2, 3, 5, 6 rows follow ours
    paper_rows = df[df["Source"] == "paper"]
    assert list(paper_rows["C"]) == ["C=2", "C=3", "C=5", "C=6"] and paper_rows.iloc[0]["BoolQ paper"] == 63.12


def test_table16_and_table18_paper_matching():
    pts = [("m", "Rule (11-14, 19-22, 27-30)", _rec("m", 9, boolq=0.4)), ("m", "LaCo", _rec("m", 8, boolq=0.45))]
    df = laco_grid_table("laco_table16_rule", "Strategy", pts, load_paper_grid("laco_table16_rule", "16"))
    assert list(df["BoolQ paper"][:2]) == [63.49, 64.07] and math.isnan(df.iloc[1]["HellaSwag paper"])
    assert list(df[df["Source"] == "paper"]["Model"]) == ["Baichuan2-7B", "Baichuan2-7B"]
    df = laco_grid_table("laco_table18_size", "Sentences", [("m", "5", _rec("m", 8)), ("m", "10", _rec("m", 8))],
                         load_paper_grid("laco_table18_size", "18"))
    assert math.isnan(df.iloc[0]["BoolQ paper"]) and df.iloc[1]["BoolQ paper"] == 64.07  # only row 1 (10) is known
    assert len(df) == 2 + 4
    from layerpuzzle.tables.render import markdown_table

    assert "| ours | m | 5 | 22 | 8 |" in markdown_table(df)  # counts print as integers, paper rows leave them empty


def test_ratio_table_cells():
    dense = {"m": _rec("m", 0, piqa=0.7, boolq=0.6)}
    table, caption = laco_grid_tables("laco_table07_25_ratios",
                                      [("m", "12", _rec("m", 3, piqa=0.65, boolq=0.55)),
                                       ("m", "27.1", _rec("m", 8, piqa=0.6, boolq=0.5))], dense)
    assert list(table["Ratio (%)"]) == [0.0, 12.0, 27.1] and list(table["Layers"]) == [30, 27, 22]
    assert list(table["Avg"]) == [65.0, 60.0, 55.0] and list(table["PIQA"]) == [70.0, 65.0, 60.0]
    assert list(table["Layers paper"]) == [32, 28, 23] and list(table["Avg paper"]) == [46.55, 36.13, 37.46]
    assert table.iloc[1]["PIQA paper"] == 74.48 and table.iloc[2]["BoolQ paper"] == 64.07
    assert math.isnan(table.iloc[0]["PIQA paper"])  # the paper's dense row of Table 25 is lost
    assert "Table 9" in caption


def test_distance_table_cells():
    rec = {"kl_divergence": 0.123456, "kernel_cka": 0.9, "linear_cka": 0.8, "n_tokens": 40}
    df = laco_distance_table([("m", "laco/sp30/default", rec)], load_paper_table14())
    row = df.iloc[0]
    assert (row["KL"], row["Kernel CKA"], row["Linear CKA"], row["Tokens"]) == (0.1235, 0.9, 0.8, 40)
    assert (row["KL paper"], row["Kernel CKA paper"], row["Linear CKA paper"]) == (0.0, 1.0, 1.0)


# ------------------------------------------------------------------ drop and fixed-plan collapse
def test_fixed_plan_collapse_is_rdsc_of_each_range_and_drop_keeps_the_base():
    from layerpuzzle.methods.laco.collapse import fixed_collapse
    from layerpuzzle.methods.laco.rdsc import rdsc_tensor
    from layerpuzzle.models.random_models import build_random_model

    model, tok = build_random_model("llama", seed=3)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    res = fixed_collapse(model, tok, ["a b c d", "e f g"], plan_groups("2-3+5-7", 8))
    assert res.groups == [[0], [1, 2], [3], [4, 5, 6], [7]] and res.removed == 3 and len(model.model.layers) == 5
    got = model.model.layers[3].mlp.up_proj.weight
    want = rdsc_tensor(sd["model.layers.4.mlp.up_proj.weight"],
                       [sd["model.layers.5.mlp.up_proj.weight"], sd["model.layers.6.mlp.up_proj.weight"]])
    assert torch.equal(got, want) and torch.equal(model.model.layers[2].mlp.up_proj.weight,
                                                  sd["model.layers.3.mlp.up_proj.weight"])
    assert 0 < res.candidates[0]["similarity"] <= 1 + 1e-9

    model, tok = build_random_model("llama", seed=3)
    fixed_collapse(model, tok, ["a b c d"], plan_groups("2-3+5-7", 8), merge="drop")
    assert torch.equal(model.model.layers[3].mlp.up_proj.weight, sd["model.layers.4.mlp.up_proj.weight"])


def test_search_with_drop_keeps_only_original_layers():
    from layerpuzzle.methods.laco.collapse import CollapseParams, layer_collapse
    from layerpuzzle.models.random_models import build_random_model

    model, tok = build_random_model("llama", seed=4)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    res = layer_collapse(model, tok, ["a b c d e"], CollapseParams(merge_layers=2, threshold=0.0, stop_at_target=False),
                         merge="drop")
    assert res.removed >= 1
    for i, g in enumerate(res.groups):  # each kept layer is its group's base layer, unchanged
        assert torch.equal(model.model.layers[i].self_attn.q_proj.weight, sd[f"model.layers.{g[0]}.self_attn.q_proj.weight"])


def test_sampled_sentences(mirror):
    from layerpuzzle.methods.laco.sentences import sample_sentences

    a = sample_sentences("wikipedia", 10, 1, mirror)
    assert len(a) == 10 and a == sample_sentences("wikipedia", 10, 1, mirror) != sample_sentences("wikipedia", 10, 2, mirror)
    assert all(len(s) >= 40 for s in sample_sentences("book", 5, 0, mirror))
    with pytest.raises(ValueError, match=r"`sentence_count`: value 5000 is not allowed; allowed: 1\.\.1000"):
        sample_sentences("wikipedia", 5000, 0, mirror)


# ------------------------------------------------------------------ Table 14 / figure jobs end to end
def test_distance_and_figure_jobs_on_a_tiny_model(tmp_path, mirror):
    from layerpuzzle.laco_analysis_jobs import distances_job, fig4_job, fig5_job
    from layerpuzzle.methods.laco.pipeline import run_laco
    from layerpuzzle.models.random_models import build_random_model

    model, tok = build_random_model("llama", seed=1)
    dense = tmp_path / "dense"
    model.save_pretrained(dense)
    tok.save_pretrained(dense)
    same = distances_job(str(dense), str(dense), str(tmp_path / "same.json"), n_sentences=4, mirror=str(mirror))
    assert same["kl_divergence"] == pytest.approx(0.0, abs=1e-9)
    assert same["linear_cka"] == pytest.approx(1.0, abs=1e-6) and same["kernel_cka"] == pytest.approx(1.0, abs=1e-6)
    pruned = tmp_path / "pruned"
    run_laco(str(dense), str(pruned), model_name="m", target_fraction=0.25,
             variant={"variant": "described", "plan": "2-4"}, search={}, sentences=["a b c"], device="cpu")
    rec = distances_job(str(dense), str(pruned), str(tmp_path / "p.json"), n_sentences=4, mirror=str(mirror))
    assert rec["pruned_layers"] == 6 and rec["kl_divergence"] > 0 and rec["linear_cka"] < 1
    assert json.loads((tmp_path / "p.json").read_text())["kl_divergence"] == rec["kl_divergence"]

    fig4_job(str(dense), str(tmp_path / "f4.png"), str(tmp_path / "f4.csv"), "t")
    f4 = pd.read_csv(tmp_path / "f4.csv")
    assert len(f4) == 5 * 7 and (tmp_path / "f4.png").stat().st_size > 1000
    out = {k: str(tmp_path / f"{k}.{k.split('_')[1]}") for k in ("fig5a_png", "fig5a_csv", "fig5b_png", "fig5b_csv")}
    info = fig5_job(str(dense), out, "t", n_sentences=4, mirror=str(mirror))
    f5a, f5b = pd.read_csv(out["fig5a_csv"]), pd.read_csv(out["fig5b_csv"])
    assert len(f5a) == 8 and f5a["cosine"].between(-1, 1).all()
    assert info["groups"] == len(f5b) == 5 and list(f5b["start"]) == [0, 1, 2, 3, 4]  # 8 layers: windows in 1-8


# ------------------------------------------------------------------ the named targets (dry runs on the tiny config)
@pytest.mark.slow
@pytest.mark.parametrize("target, jobs", [
    ("laco_table07_25_ratios", {"laco": 3, "evaluate_checkpoint": 4, "laco_grid_table": 1}),
    # 26 grid points: C 1..6, I 1..4, D base + 3, T 4, drop/merge, rule/LaCo, book 3, sizes 5; 18 distinct paths
    ("laco_ablations", {"laco": None, "laco_grid_table": 8}),
    ("laco_table14", {"laco": 1, "laco_distances": 1, "laco_table14_table": 1}),
    ("laco_figures", {"laco_fig4": 1, "laco_fig5": 1}),
])
def test_each_target_schedules_its_jobs_on_the_tiny_config(tmp_path, target, jobs):
    import re

    from workflow_utils import snakemake, tiny_config

    cfg = tiny_config(tmp_path, enable=("laco",))
    c = yaml.safe_load(cfg.read_text())
    c["methods"]["laco"]["variants"] = [{"variant": "described"}]
    cfg.write_text(yaml.safe_dump(c))
    res = snakemake(tmp_path, cfg, "-n", "--quiet", "rules", "--", target)
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", res.stdout, re.M)}
    for rule, n in jobs.items():
        assert rule in counts and (n is None or counts[rule] == n), (rule, counts)
    assert "all_tables" not in counts and "results_table" not in counts  # extra targets only


@pytest.mark.slow
def test_table14_and_figure_targets_build_on_the_tiny_model(tmp_path):
    """End to end through Snakemake: the rules' scripts write the Table 14 record and table and the figures."""
    from workflow_utils import snakemake, tiny_config

    cfg = tiny_config(tmp_path, enable=("laco",))
    c = yaml.safe_load(cfg.read_text())
    c["methods"]["laco"]["variants"] = [{"variant": "described"}]
    c["methods"]["laco"]["ablations"] = {"distance_sentences": 8}
    cfg.write_text(yaml.safe_dump(c))
    snakemake(tmp_path, cfg, "--cores", "1", "laco_figures", "laco_table14")
    rec = json.loads((tmp_path / "results/random-llama/analyses/laco_distances/laco/sp30/variant=described.json")
                     .read_text())
    assert rec["kl_divergence"] > 0 and 0 < rec["linear_cka"] < 1 and rec["pruned_layers"] < rec["dense_layers"] == 8
    table = pd.read_csv(tmp_path / "results/tables/laco_table14.csv")
    assert table.iloc[0]["KL"] == round(rec["kl_divergence"], 4) and table.iloc[0]["KL paper"] == 0.0
    figs = tmp_path / "results/figures/random-llama/laco"
    assert len(pd.read_csv(figs / "fig4_weight_distances.csv")) == 5 * 7
    assert len(pd.read_csv(figs / "fig5a_adjacent_cosine.csv")) == 8 and len(pd.read_csv(figs / "fig5b_merged_cosine.csv")) == 5
    assert all((figs / f).stat().st_size > 1000 for f in ("fig4_weight_distances.png", "fig5a_adjacent_cosine.png",
                                                          "fig5b_merged_cosine.png"))
