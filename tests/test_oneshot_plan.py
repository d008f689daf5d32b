"""The oneshot stage's ids, paths, task lists and bad-input checks (layerpuzzle.plan, config, quantize.pipeline),
without Snakemake and without llm-compressor; one dry run shows a bad entry stops the workflow before any job."""
import json
import re

import pytest
import yaml

from layerpuzzle.config import ConfigError, canonical, check_references, load_schema, validate_config
from layerpuzzle.methods.quantize.pipeline import check_source, source_pruning
from layerpuzzle.plan import CKPT_RE, POST_STAGES, Plan

from conftest import REPO
from workflow_utils import _merge, snakemake

SCHEMA = REPO / "config" / "schema.yaml"
SMOL = "smollm2-135m"
RANDOM = {"source": "random", "arch": "llama", "seed": 0, "dtype": "float32"}


def plan_of(oneshot=None, models=None, run_models=None, **updates) -> Plan:
    """The embedded default with ``oneshot`` (and a random LLaMA, hidden 64, intermediate 128) merged in."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"]["random-llama"] = dict(RANDOM)
    cfg["models"].update(models or {})
    if run_models:
        cfg["run"]["models"] = run_models
        cfg["run"]["table3_models"] = run_models
    if oneshot is not None:
        _merge(cfg, {"oneshot": oneshot})
    cfg.update(updates)
    cfg = canonical(validate_config(cfg, SCHEMA))
    check_references(cfg)
    return Plan(cfg, load_schema(SCHEMA))


# ------------------------------------------------------------------ ids and paths
def test_ids_paths_and_split():
    plan = plan_of()
    assert Plan.oneshot_id("dense", "gptq-w4a16-g64") == "dense/oneshot/gptq-w4a16-g64"
    src = "mka/n8/fusion=released,kernel=released"
    cid = plan.oneshot_id(src, "awq-w4a16-g64")
    assert cid == f"{src}/oneshot/awq-w4a16-g64"
    assert plan.split_oneshot(cid) == (src, "awq-w4a16-g64")
    assert plan.split_oneshot("dense/oneshot/sparsegpt-43.75") == ("dense", "sparsegpt-43.75")
    assert plan.split_oneshot(src) is None and plan.split_oneshot("dense") is None
    assert plan.root_checkpoint(cid) == src and plan.root_checkpoint("dense/oneshot/x") == "dense"
    assert plan.checkpoint_dir(SMOL, cid) == f"results/{SMOL}/pruned/oneshot/awq-w4a16-g64/{src}"
    assert plan.checkpoint_dir(SMOL, "dense/oneshot/gptq-w4a16-g64") == f"results/{SMOL}/pruned/oneshot/gptq-w4a16-g64/dense"
    assert plan.metrics_path(SMOL, cid) == f"results/{SMOL}/eval/{cid}/metrics.json"
    assert POST_STAGES == ("oneshot", "posttrain")


@pytest.mark.parametrize("ckpt, ok", [
    ("dense", True), ("dense/oneshot/gptq-w4a16-g64", True), ("mka/n8/default/oneshot/smoothquant-w8a8-a0.5", True),
    ("shortgpt/sp30/last_layer_output=raw/oneshot/sparsegpt-43.75", True), ("mka/sp30/default", True),
    ("dense/posttrain/x", True), ("dense/oneshot/x/posttrain/y", False), ("dense/oneshot/", False), ("dense/oneshot/a/b", False), ("mka/x30/default", False),
])
def test_ckpt_re_matches_chains(ckpt, ok):
    assert bool(re.fullmatch(CKPT_RE, ckpt)) is ok


def test_a_chain_is_evaluated_on_its_sources_task_list():
    plan = plan_of(run={"models": [SMOL], "targets": [0.3, "n8"], "table3_models": [SMOL]},
                   evaluation={**yaml.safe_load((REPO / "config" / "config.yaml").read_text())["evaluation"],
                               "tasks_by_target": {"n8": ["mmlu"]}})
    assert plan.eval_tasks("mka/n8/default/oneshot/gptq-w4a16-g64") == ["mmlu"]
    assert plan.eval_tasks("dense/oneshot/gptq-w4a16-g64") == list(plan.config["evaluation"]["tasks"])
    assert plan.eval_tasks("mka/sp30/default/oneshot/gptq-w4a16-g64") == list(plan.config["evaluation"]["tasks"])
    (group,) = plan.eval_task_groups()
    restricted, main = plan.eval_ckpt_re(group["labels"]), plan.eval_ckpt_re()
    for ckpt in ("mka/n8/default", "mka/n8/default/oneshot/gptq-w4a16-g64"):
        assert re.fullmatch(restricted, ckpt) and not re.fullmatch(main, ckpt)
    for ckpt in ("dense", "dense/oneshot/gptq-w4a16-g64", "mka/sp30/default/oneshot/awq-w4a16-g64"):
        assert re.fullmatch(main, ckpt) and not re.fullmatch(restricted, ckpt)


def test_embedded_default_builds_none_in_all_tables_and_lists_its_extra_target():
    plan = plan_of()
    assert not any("/oneshot/" in p for p in plan.all_table_outputs() + plan.all_metrics())
    assert plan.oneshot_metrics() == [
        f"results/{SMOL}/eval/dense/oneshot/gptq-w4a16-g64/metrics.json",
        f"results/{SMOL}/eval/dense/oneshot/sparsegpt-50/metrics.json",
    ]
    assert plan.oneshot_calib_path(SMOL) == f"results/{SMOL}/calib/c4en-n8-s10-len512-rw.safetensors"


def test_paper_config_quantizes_at_group_128_on_128_windows_of_2048():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    _merge(cfg, yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
    cfg = canonical(validate_config(cfg, SCHEMA))
    plan = Plan(cfg, load_schema(SCHEMA))
    spec = plan.oneshot_calibration()
    assert (spec.dataset, spec.n, spec.seq_len, spec.sampling) == ("c4en", 128, 2048, "random_windows")
    ids = plan.oneshot_builds("llama2-7b")
    assert ids and all(re.search(r"-g128$|w8a8", i) for i in ids)


# ------------------------------------------------------------------ bad input, before any job
def build(source, *schemes, models=None):
    return {"build": [{"source": source, "schemes": list(schemes), **({"models": models} if models else {})}]}


@pytest.mark.parametrize("entry, key, words", [
    (build("dense", "gptq-w3a16-g32"), "oneshot.build[0].schemes[0]", ["'gptq-w3a16-g32'", "allowed: w4a16"]),
    (build("dense", "zeroquant-w4a16-g32"), "oneshot.build[0].schemes[0]", ["unknown scheme 'zeroquant'", "gptq"]),
    (build("dense", "gptq-w4a16-g32", "awq-w4a16-g128"), "oneshot.build[0].schemes[1]",
     ["group size 128 does not divide", "hidden_size=64", "allowed group sizes for this model: g16, g32, g64"]),
    (build("dense", "sparsegpt-100"), "oneshot.build[0].schemes[0]", ["sparsity 1 is outside (0, 1)"]),
    (build("dense", "sparsegpt-0"), "oneshot.build[0].schemes[0]", ["sparsity 0 is outside (0, 1)"]),
    (build("nosuch/sp30/default", "gptq-w4a16-g32"), "oneshot.build[0].source", ["'nosuch' is not a method",
                                                                                  "shortgpt"]),
    (build("shortgpt/x30/default", "gptq-w4a16-g32"), "oneshot.build[0].source", ["'x30' is not a target label"]),
    (build("shortgpt/sp30/bogus=1", "gptq-w4a16-g32"), "oneshot.build[0].source", ["'bogus=1'", "last_layer_output"]),
    (build("shortgpt/sp30", "gptq-w4a16-g32"), "oneshot.build[0].source", ["not a checkpoint id"]),
    (build("llm_pruner/sp25/default", "gptq-w4a16-g32"), "oneshot.build[0].source", ["uneven-width"]),
    (build("dense/oneshot/sparsegpt-50", "gptq-w4a16-g32"), "oneshot.build[0].source",
     ["itself a oneshot checkpoint"]),
])
def test_bad_entries_are_refused_naming_key_value_and_what_is_allowed(entry, key, words):
    with pytest.raises(ValueError) as err:
        plan_of(entry, run_models=["random-llama"])
    msg = str(err.value)
    assert f"config key `{key}`" in msg and "'random-llama'" in msg
    for w in words:
        assert w in msg, msg


def test_entries_of_other_models_are_not_checked_and_unknown_models_are_refused():
    plan = plan_of(build("dense", "gptq-w4a16-g128", models=["smollm2-135m"]), run_models=["random-llama"])
    assert plan.oneshot_builds("random-llama") == []
    with pytest.raises(ConfigError, match=r"`oneshot.build\[0\].models\[0\]`: value 'nosuch' is not a model"):
        plan_of(build("dense", "gptq-w4a16-g32", models=["nosuch"]))


def test_schema_refuses_an_entry_without_schemes():
    with pytest.raises(ConfigError, match="oneshot.build"):
        plan_of({"build": [{"source": "dense", "schemes": []}]})


def test_the_job_checks_the_group_against_config_json_before_loading_weights(tmp_path):
    # SmolLM2-135M's widths: not known before the model is prepared, so the job checks its config.json
    cfg = {"hidden_size": 576, "intermediate_size": 1536, "num_attention_heads": 9, "head_dim": 64,
           "num_hidden_layers": 30}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"group size 128 does not divide hidden_size=576, "
                                         r"num_attention_heads\*head_dim=576; allowed group sizes for this model: "
                                         r"g16, g32, g64 \(e.g. 'gptq-w4a16-g64'\)"):
        check_source(tmp_path, "gptq-w4a16-g128")
    assert check_source(tmp_path, "gptq-w4a16-g64") == cfg
    assert check_source(tmp_path, "smoothquant-w8a8-a0.5") == cfg  # per channel: no group
    assert source_pruning(tmp_path, cfg)["dense_layers"] == 30
    (tmp_path / "uneven_layers.json").write_text("{}")
    with pytest.raises(ValueError, match="uneven layer widths"):
        check_source(tmp_path, "gptq-w4a16-g64")
    (tmp_path / "uneven_layers.json").unlink()
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "quantization_config": {"format": "pack-quantized"}}))
    with pytest.raises(ValueError, match="already quantized"):
        check_source(tmp_path, "gptq-w4a16-g64")


def test_metrics_carry_the_oneshot_block(tmp_path):
    from layerpuzzle.evaluation.metrics import pruning_info

    block = {"stage": "oneshot", "scheme": "sparsegpt-50", "source": "dense", "kind": "sparsegpt", "zeroed_pct": 50.01}
    (tmp_path / "pruning.json").write_text(json.dumps({"method": "Dense", "variant": "", "target_pct": 0,
                                                        "removed_layers": 0, "sparsity_pct": 0.0, "dense_layers": 8,
                                                        "oneshot": block}))
    info = pruning_info(tmp_path)
    assert info["oneshot"] == block and info["method"] == "Dense" and info["removed_layers"] == 0
    (tmp_path / "pruning.json").write_text(json.dumps({"method": "MKA", "removed_layers": 2}))
    assert "oneshot" not in pruning_info(tmp_path)  # every other checkpoint's record is unchanged


@pytest.mark.slow
def test_a_bad_scheme_stops_the_dry_run(tmp_path):
    cfg = yaml.safe_load((REPO / "tests" / "configs" / "random_llama.yaml").read_text())
    cfg["oneshot"] = build("dense", "gptq-w4a16-g128")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake(tmp_path, path, "-n", "oneshot_all", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "config key `oneshot.build[0].schemes[0]`" in out and "allowed group sizes" in out
    assert not (tmp_path / "results").exists()
    # (a path asked for directly is checked by the same PLAN.check_oneshot_* calls, from the rule's params)
