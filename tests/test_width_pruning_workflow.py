"""LLM-Pruner and SliceGPT end to end: the real DAG on a random 8-layer LLaMA at target 25 %, built and evaluated
through all_evaluations, rows in the results table."""
import json
import math

import pandas as pd
import pytest
import yaml
from transformers import AutoModelForCausalLM

from layerpuzzle.models.sources import load_model

from workflow_utils import snakemake, tiny_config

pytestmark = pytest.mark.slow

# LLM-Pruner's default range [4, L − 2) is 2 of the 8 layers, too few to remove 25 % of the parameters
PRUNER_VARIANT = {"label": "", "layers": [1, 7]}
CKPTS = {"llm_pruner": "llm_pruner/sp25/layers=1+7", "slicegpt": "slicegpt/sp25/default"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("width")
    cfg = tiny_config(tmp, enable=("llm_pruner", "slicegpt"), evaluation={
        "batch_size": 4, "max_length": 256,
        "perplexity": {"datasets": ["wikitext2"], "seq_len": 64, "max_windows": {"wikitext2": 2}},
        "tasks": {"arc_easy": {"limit": 2}},
    })
    c = yaml.safe_load(cfg.read_text())
    c["methods"]["llm_pruner"]["variants"] = [PRUNER_VARIANT]
    cfg.write_text(yaml.safe_dump(c, sort_keys=False))
    snakemake(tmp, cfg, "--cores", "2", "all_evaluations", "results/tables/results.csv")
    return tmp


def test_both_are_evaluated_with_finite_perplexity_and_listed_in_the_results_table(run):
    table = pd.read_csv(run / "results" / "tables" / "results.csv")
    assert {"Dense", "LLM-Pruner", "SliceGPT"} <= set(table.Method)
    for key, ckpt in CKPTS.items():
        metrics = json.loads((run / "results" / "random-llama" / "eval" / ckpt / "metrics.json").read_text())
        ppl = metrics["perplexity"]["wikitext2"]["ppl"]
        assert math.isfinite(ppl) and ppl > 1
        pruning = json.loads((run / "results" / "random-llama" / "pruned" / ckpt / "pruning.json").read_text())
        assert metrics["method"] == pruning["method"] and metrics["removed_layers"] == 0
        row = table[table.Method == pruning["method"]].iloc[0]
        assert row["Sparsity (%)"] == pytest.approx(pruning["sparsity_pct"], abs=0.006)
        assert 0 < pruning["sparsity_pct"] <= 25  # at or below the target (at_most)
        assert pruning["target_pct"] == 25 and pruning["pruning_seconds"] > 0
        assert pruning["timing"]["core_s"] == pruning["pruning_seconds"]


def test_checkpoints_load_only_through_layerpuzzle(run):
    for key, ckpt in CKPTS.items():
        d = run / "results" / "random-llama" / "pruned" / ckpt
        assert (d / "provenance.json").is_file() and (d / "uneven_layers.json").is_file()
        assert "**cannot** load this checkpoint" in (d / "README.md").read_text()
        model, _ = load_model(d)
        assert len(model.model.layers) == 8
        with pytest.raises(Exception):
            AutoModelForCausalLM.from_pretrained(d)
    record = json.loads((run / "results" / "random-llama" / "pruned" / CKPTS["llm_pruner"] / "uneven_layers.json")
                        .read_text())
    widths = [w["intermediate_size"] for w in record["layers"]]
    assert widths[0] == widths[7] == 128 and all(w < 128 for w in widths[1:7])  # only layers [1, 7) pruned
    sliced = json.loads((run / "results" / "random-llama" / "pruned" / CKPTS["slicegpt"] / "uneven_layers.json")
                        .read_text())
    assert sliced["kind"] == "sliced" and sliced["embedding_dim"] < 64 and sliced["lm_head_input"] == 64
