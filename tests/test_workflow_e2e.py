"""The spine end to end: the real DAG on a random 8-layer LLaMA, offline, from scratch.

Runs all_tables (every method disabled), then checks that a second dry run
schedules nothing and that changing one evaluation setting reschedules only
the evaluation jobs and the tables that depend on them.
"""
import json

import pandas as pd
import pytest
import yaml

from workflow_utils import scheduled_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("spine")
    cfg = tiny_config(tmp)
    snakemake(tmp, cfg, "--cores", "2", "all_tables")
    return tmp, cfg


def test_artifacts_exist_with_real_numbers(run):
    tmp, _ = run
    res = tmp / "results" / "random-llama"
    bi = pd.read_parquet(next(res.glob("scores/*/raw-span2/bi.parquet")))
    sbi = pd.read_parquet(next(res.glob("scores/*/raw-span2/sbi.parquet")))
    assert sorted(bi[bi.estimator == "cosine_mean"].layer) == list(range(8))
    assert sorted(sbi.groupby("span").size().items()) == [(1, 14), (2, 12)]  # 7 and 6 windows × 2 estimators
    assert bi[bi.estimator == "cosine_mean"].value.between(0, 2).all()  # 1 - cos
    metrics = json.loads((res / "eval" / "dense" / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"arc_challenge", "arc_easy", "hellaswag", "openbookqa", "piqa", "winogrande", "mmlu"}
    assert all(t["n_samples"] == 4 for t in metrics["tasks"].values())
    assert metrics["perplexity"]["wikitext2"]["n_windows"] == 4 and metrics["perplexity"]["wikitext2"]["ppl"] > 1
    table = pd.read_csv(tmp / "results" / "tables" / "results.csv")
    assert list(table.Method) == ["Dense"]
    t3 = pd.read_csv(tmp / "results" / "tables" / "table03_sparsity.csv")
    assert t3.loc[0, "#Blocks"] == 8


def test_table3_lists_the_paper_models_beside_ours(run):
    """run.table3_paper_models (default): the paper's seven models from config/paper.yaml, configs only."""
    tmp, _ = run
    t3 = pd.read_csv(tmp / "results" / "tables" / "table03_sparsity.csv")
    assert list(t3.Model) == ["random-llama", "LLaMA-2-7B", "LLaMA-2-13B", "LLaMA-3-8B", "Vicuna-7B", "Mistral-7B",
                              "Qwen2.5-7B", "Qwen3-4B"]
    vs = pd.read_csv(tmp / "results" / "tables" / "table03_vs_paper.csv")
    assert len(vs) == 7 * 3  # one row per paper model and target, none for the random model
    assert set(vs.loc[vs.Model == "LLaMA-2-7B", "#Removed"]) == {3, 7, 10}  # the paper's Table 3 counts


def test_provenance_records_inputs_with_hashes(run):
    tmp, _ = run
    from layerpuzzle.provenance import sha256_path

    prov = json.loads(next((tmp / "results" / "random-llama" / "calib").glob("*.prov.json")).read_text())
    assert prov["rule"] == "calibration_set" and prov["params"]["calib"].startswith("wikitext2-n8-s10")
    model_in = prov["inputs"]["model"][0]
    assert model_in["sha256"] == sha256_path(tmp / model_in["path"])
    assert prov["packages"]["torch"] and prov["git"]["commit"]
    out = prov["outputs"]["calib"][0]
    assert out["sha256"] == sha256_path(tmp / out["path"])


def test_second_run_schedules_nothing(run):
    tmp, cfg = run
    res = snakemake(tmp, cfg, "-n", "all_tables")
    assert "Nothing to be done" in res.stdout + res.stderr


def test_changing_one_eval_setting_reschedules_only_its_dependents(run):
    tmp, cfg = run
    c = yaml.safe_load(cfg.read_text())
    c["evaluation"]["tasks"]["mmlu"]["limit"] = 3
    cfg2 = cfg.parent / "config_changed.yaml"
    cfg2.write_text(yaml.safe_dump(c))
    res = snakemake(tmp, cfg2, "-n", "all_tables")
    jobs = scheduled_jobs(res.stdout + res.stderr)
    assert jobs == {"evaluate_checkpoint": 1, "results_table": 1, "all_tables": 1}, jobs
