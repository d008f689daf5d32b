"""rule oneshot_compress end to end: the real DAG on the random 8-layer LLaMA quantizes the dense model and a
Reverse checkpoint with GPTQ W4A16 (group 32) through target oneshot_all, and evaluates both with the
ordinary evaluate_checkpoint; the checkpoints load with load_model and AutoModelForCausalLM.from_pretrained."""
import importlib.util
import json
import math

import pytest
import torch
import yaml

from workflow_utils import REPO, _merge, scheduled_jobs, snakemake, tiny_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("llmcompressor") is None,
                                 reason="llmcompressor not installed (pip install -e '.[test]' installs it)")]

MODEL = "random-llama"
SCHEME = "gptq-w4a16-g32"
GROUP = 32


def reverse_id(cfg_path) -> str:
    """The Reverse checkpoint id of the test config (the workflow's own Plan)."""
    from layerpuzzle.config import canonical, load_schema, validate_config
    from layerpuzzle.plan import Plan

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    _merge(cfg, yaml.safe_load(cfg_path.read_text()))
    cfg = canonical(validate_config(cfg, REPO / "config" / "schema.yaml"))
    return Plan(cfg, load_schema(REPO / "config" / "schema.yaml")).method_checkpoints("reverse", MODEL)[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("oneshot")
    cfg = tiny_config(tmp, enable=("reverse",), evaluation={
        "batch_size": 4, "max_length": 256,
        "perplexity": {"datasets": ["wikitext2"], "seq_len": 64, "max_windows": {"wikitext2": 2}},
        "tasks": {"arc_easy": {"limit": 2}},
    })
    source = reverse_id(cfg)
    c = yaml.safe_load(cfg.read_text())
    c["oneshot"] = {"calibration": {"dataset": "c4en", "n": 4, "seed": 10, "seq_len": 64, "sampling": "random_windows"},
                    "build": [{"source": "dense", "schemes": [SCHEME]}, {"source": source, "schemes": [SCHEME]}]}
    cfg.write_text(yaml.safe_dump(c, sort_keys=False))
    snakemake(tmp, cfg, "--cores", "2", "oneshot_all")
    return tmp, cfg, ["dense", source]


def ckpt_dir(root, source):
    return root / "results" / MODEL / "pruned" / "oneshot" / SCHEME / source


def test_checkpoints_are_int4_groups_with_records_and_provenance(run):
    root, _, sources = run
    for source in sources:
        d = ckpt_dir(root, source)
        config = json.loads((d / "config.json").read_text())
        assert config["quantization_config"]["format"] == "pack-quantized"
        record = json.loads((d / "quantization.json").read_text())
        assert record["scheme"] == SCHEME and record["params"]["group_size"] == GROUP
        assert record["calibration"]["windows"] == 4 and record["calibration"]["seq_len"] == 64
        assert record["source"] == source and record["workarounds"] == []
        prov = json.loads((d / "provenance.json").read_text())
        assert prov["rule"] == "oneshot_compress" and prov["params"]["scheme"] == SCHEME
        assert {"ckpt", "calib"} <= set(prov["inputs"]) and len(prov["inputs"]["calib"][0]["sha256"]) == 64
        assert prov["extra"]["oneshot"]["versions"]["llmcompressor"] == "0.14.0.1"
        assert SCHEME in (d / "README.md").read_text()


def test_pruning_record_carries_the_source(run):
    root, _, sources = run
    dense = json.loads((ckpt_dir(root, "dense") / "pruning.json").read_text())
    assert dense["method"] == "Dense" and dense["removed_layers"] == 0 and dense["dense_layers"] == 8
    assert dense["oneshot"]["scheme"] == SCHEME and dense["oneshot"]["source"] == "dense"
    src = json.loads((root / "results" / MODEL / "pruned" / sources[1] / "pruning.json").read_text())
    chained = json.loads((ckpt_dir(root, sources[1]) / "pruning.json").read_text())
    assert src["removed_layers"] >= 1
    for key in ("method", "variant", "removed_layers", "sparsity_pct", "target_pct", "dense_layers"):
        assert chained[key] == src[key]
    assert chained["oneshot"]["source"] == sources[1]


def test_both_load_with_load_model_and_from_pretrained_and_hold_int4_groups(run):
    from transformers import AutoModelForCausalLM

    from layerpuzzle.models.sources import load_model

    root, _, sources = run
    ids = torch.arange(3, 40).unsqueeze(0)
    for source in sources:
        d = ckpt_dir(root, source)
        ours, _ = load_model(d)
        plain = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
        with torch.no_grad():
            a, b = ours(ids).logits, plain(ids).logits
        assert torch.isfinite(a).all() and torch.equal(a, b)
        kept = json.loads((d / "pruning.json").read_text())
        assert len(plain.model.layers) == 8 - kept["removed_layers"]
        w = plain.model.layers[0].mlp.down_proj.weight  # decompressed: at most 16 values per group of 32
        groups = w.reshape(w.shape[0], -1, GROUP)
        assert max(len(torch.unique(g)) for row in groups for g in row) <= 16


def test_evaluated_by_the_ordinary_rule(run):
    root, cfg, sources = run
    for source in sources:
        ckpt = f"{source}/oneshot/{SCHEME}"
        metrics = json.loads((root / "results" / MODEL / "eval" / ckpt / "metrics.json").read_text())
        assert metrics["checkpoint"] == ckpt and set(metrics["tasks"]) == {"arc_easy"}
        assert math.isfinite(metrics["perplexity"]["wikitext2"]["ppl"]) and metrics["perplexity"]["wikitext2"]["ppl"] > 1
        prov = json.loads((root / "results" / MODEL / "eval" / ckpt / "metrics.prov.json").read_text())
        assert prov["rule"] == "evaluate_checkpoint"
    # nothing left to do; the dense model's own evaluation is not part of oneshot_all
    res = snakemake(root, cfg, "-n", "oneshot_all")
    assert scheduled_jobs(res.stdout) == {}
