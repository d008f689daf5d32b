"""The efficiency rule and the LaCo tables end to end: the real DAG on a random 8-layer LLaMA (target laco_tables:
Dense, LLM-Pruner, SliceGPT and LaCo built, evaluated, measured, tabled beside the paper)."""
import json

import pandas as pd
import pytest
import yaml

from workflow_utils import snakemake, tiny_config

pytestmark = pytest.mark.slow

EFFICIENCY = {"n_prompts": 2, "prompt_tokens": 8, "new_tokens": 3, "warmup": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("laco_tables")
    cfg = tiny_config(tmp, enable=("laco", "llm_pruner", "slicegpt"), efficiency=EFFICIENCY,
                      laco_tables={"target": 0.25, "in_all_tables": True},
                      evaluation={"batch_size": 4, "max_length": 256,
                                  "perplexity": {"datasets": ["wikitext2"], "seq_len": 64,
                                                 "max_windows": {"wikitext2": 2}},
                                  "tasks": {"piqa": {"limit": 2}}})
    c = yaml.safe_load(cfg.read_text())
    # LLM-Pruner's default range [4, L - 2) is 2 of the 8 layers, too few for ~20 %
    c["methods"]["llm_pruner"]["variants"] = [{"label": "", "layers": [1, 7]}]
    c["methods"]["laco"]["variants"] = [{"label": "", "variant": "described"}]
    cfg.write_text(yaml.safe_dump(c, sort_keys=False))
    res = snakemake(tmp, cfg, "-n", "all_tables")
    assert "rule laco_tables:" in res.stdout + res.stderr  # in all_tables when asked for and LaCo is enabled
    snakemake(tmp, cfg, "--cores", "2", "laco_tables")
    return tmp


def _ckpts(run):
    from layerpuzzle.config import load_schema
    from layerpuzzle.plan import Plan

    from conftest import REPO, load_validated_config

    cfg = load_validated_config(run / "config.yaml")
    return Plan(cfg, load_schema(REPO / "config" / "schema.yaml")).laco_table_checkpoints("random-llama")


def test_efficiency_records_of_every_row_uneven_width_included(run):
    ckpts = _ckpts(run)
    assert ckpts["LLM-Pruner"] == ckpts["SliceGPT"].replace("slicegpt", "llm_pruner").replace("/default", "/layers=1+7")
    for row, ckpt in ckpts.items():
        d = run / "results/random-llama/efficiency" / ckpt
        rec = json.loads((d / "efficiency.json").read_text())
        assert rec["device"] == "CPU" and rec["memory_kind"] == "cpu_params+peak_rss_delta", row
        assert rec["checkpoint"] == ckpt and rec["n_prompts"] == 2 and rec["prompt_tokens"] == 16
        assert rec["generated_tokens"] == 6 and rec["warmup_passes"] == 1 and rec["tokens_per_s"] > 0
        assert rec["dtype"] == "float32" and rec["prompt_source"]
        assert (d / "efficiency.prov.json").is_file()
        assert (run / "benchmarks/random-llama/efficiency" / f"{ckpt}.tsv").is_file()
    dense = json.loads((run / "results/random-llama/efficiency/dense/efficiency.json").read_text())
    laco = json.loads((run / "results/random-llama/efficiency" / ckpts["LaCo"] / "efficiency.json").read_text())
    assert laco["n_layers"] < dense["n_layers"] == 8 and laco["param_bytes"] < dense["param_bytes"]


def test_tables_have_our_four_rows_and_the_paper_beside_them(run):
    tables = run / "results/tables"
    t1 = pd.read_csv(tables / "laco_table01.csv")
    assert t1.Pruner.tolist() == ["Dense", "LLM-Pruner", "SliceGPT", "LaCo"]
    assert t1["Avg over"].tolist() == ["1 of 14"] * 4 and t1.PIQA.notna().all()
    assert t1.set_index("Pruner").loc["LaCo", "Layers"] == 6
    t4 = pd.read_csv(tables / "laco_table04_time.csv").set_index("Pruner")
    assert (t4["Pruning time (s)"] > 0).all() and t4.loc["LaCo", "Time / LaCo"] == 1.0
    t20 = pd.read_csv(tables / "laco_table05_20_efficiency.csv").set_index("Pruner")
    assert t20.loc["Dense", "Memory / Dense"] == 1.0 and (t20.Device == "CPU").all()
    vs = pd.read_csv(tables / "laco_table01_vs_paper.csv").set_index("Pruner")
    assert vs.loc["LaCo", "PIQA [Llama2-7B]"] == 69.80 and vs.loc["Dense", "PIQA [Llama2-7B]"] == 78.18
    assert (vs["Compared"] == "reference only (another model)").all()
    for stem in ("laco_table02", "laco_table22", "laco_table03_ppl", "laco_table05_20_efficiency_vs_paper"):
        assert (tables / f"{stem}.md").is_file() and (tables / f"{stem}.tex").is_file()
    assert (tables / "laco_tables.prov.json").is_file()


def test_second_run_schedules_nothing(run):
    res = snakemake(run, run / "config.yaml", "-n", "laco_tables")
    assert "Nothing to be done" in res.stdout + res.stderr
