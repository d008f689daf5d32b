"""Layer-count targets ``n<k>`` beside sparsity targets ``sp<percent>``, per-target task lists and MKA's
compression ratio (no Snakemake here; the dry runs are in tests/test_targets_dryrun.py)."""
import copy
import json
import re

import pytest
import yaml

from layerpuzzle.config import (ConfigError, check_references, target_fraction, target_label, target_param,
                                validate_config)
from layerpuzzle.models.checkpoint import check_target, layers_to_remove, pruning_record
from layerpuzzle.models.random_models import build_random_model, random_config
from layerpuzzle.plan import CKPT_RE, TARGET_RE, Plan
from layerpuzzle.sparsity import ArchSpec, compression_ratio, layer_count, removed_for, sparsity

from conftest import REPO, default_plan

SCHEMA = REPO / "config" / "schema.yaml"
MODEL = "smollm2-135m"
# random llama: 8 layers of 36,992 parameters; 2·259·64 embeddings + lm_head, a 64-wide final norm
TINY_TOTAL = 8 * 36992 + 2 * 259 * 64 + 64


def default():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def tiny_config(**run):
    """The embedded default on the 8-layer random llama (its shape is known at validation)."""
    c = default()
    c["models"]["tiny"] = {"source": "random", "arch": "llama"}
    c["run"].update(models=["tiny"], table3_models=["tiny"], **run)
    return validate_config(c, SCHEMA)


def plan_of(config):
    from layerpuzzle.config import canonical, load_schema

    return Plan(canonical(config), load_schema(SCHEMA))


# ---------------------------------------------------------------- labels and rule parameters
def test_labels_and_what_the_jobs_receive():
    assert [target_label(t) for t in (0.3, "n8", "n1", "n30")] == ["sp30", "n8", "n1", "n30"]
    assert target_param("n8") == {"layers": 8}
    # a sparsity label's param is exactly the fraction it always was (the default's params do not move)
    for t in (0.1, 0.2, 0.25, 0.3, 0.299, 0.125, 0.3000001):
        label = target_label(t)
        assert target_param(label) == target_fraction(label) and type(target_param(label)) is float
    assert target_param("sp30") == 0.3
    with pytest.raises(ValueError, match="'n8' is not a sparsity target .*use target_param"):
        target_fraction("n8")
    for bad in ("n0", "n08", "8", "sp30", "N8"):
        with pytest.raises(ValueError, match=rf"target '{bad}' is not allowed; allowed: a fraction in \(0, 1\) or n<k>"):
            target_label(bad)


def test_path_patterns_take_both_kinds_of_label():
    for label in ("sp30", "sp29.9", "sp0.1", "n1", "n8", "n30"):
        assert re.fullmatch(TARGET_RE, label)
    for label in ("n0", "n08", "sp", "8", "n8x", "sp30n8"):
        assert not re.fullmatch(TARGET_RE, label)
    for ckpt in ("dense", "come/sp30/default", "mka/n8/fusion=described,kernel=described", "reverse/n13/keep_last=0"):
        assert re.fullmatch(CKPT_RE, ckpt)
    for ckpt in ("come/n0/default", "come/sp30", "mka/8/default"):
        assert not re.fullmatch(CKPT_RE, ckpt)


def test_layer_count_parsing():
    assert [layer_count(t) for t in ("n8", {"layers": 8}, "n1", 0.3, 0.25)] == [8, 8, 1, None, None]
    for bad in ({"layers": True}, {"layers": 8.0}, {"layers": 8, "fraction": 0.3}, {"fraction": 0.3}, "n0", "8",
                [8], None, True):
        with pytest.raises(ValueError, match="is not allowed; allowed"):
            layer_count(bad)


# ---------------------------------------------------------------- the jobs: k layers, checked before loading
def test_layers_to_remove_honours_a_layer_count():
    cfg = random_config("llama")  # 8 layers
    assert [layers_to_remove(cfg, {"layers": k}) for k in (1, 3, 7)] == [1, 3, 7]
    assert layers_to_remove(cfg, 0.25) == 2  # the Table 3 rule, unchanged
    with pytest.raises(ValueError, match=r"layer-count target n8 removes 8 of the model's 8 layers; allowed: n1\.\.n7 "
                                         r"\(at least one layer removed, at least one kept\)\. Fix run\.targets"):
        layers_to_remove(cfg, {"layers": 8})
    with pytest.raises(ValueError, match="layer-count target n0 removes 0 of the model's 8 layers; allowed: n1..n7"):
        layers_to_remove(cfg, {"layers": 0})


def _weightless_dir(tmp_path):
    """A model directory holding only config.json: loading it would fail, checking a target does not."""
    d = tmp_path / "dense"
    d.mkdir()
    (d / "config.json").write_text(random_config("llama").to_json_string())
    return d


def _jobs():
    from layerpuzzle.methods.come.job import build_checkpoint
    from layerpuzzle.methods.fusegpt.pipeline import run_fusegpt
    from layerpuzzle.methods.laco.pipeline import run_laco
    from layerpuzzle.methods.mka.pipeline import run_mka
    from layerpuzzle.posttrain_jobs import run_fusegpt_job, run_streamline_job

    common = dict(model_name="m", variant={}, dtype="float32", device="cpu")
    train = dict(data_path="x", out_dir="o", state_dir="s", variant={}, run_params={}, base_model="m",
                 dtype="float32", device="cpu", checkpoint_every=1)
    return {
        "laco": lambda d, t: run_laco(str(d), "o", target_fraction=t, search={}, sentences=[], **common),
        "mka": lambda d, t: run_mka(str(d), "npib", "o", target_fraction=t, **common),
        "fusegpt": lambda d, t: run_fusegpt(str(d), "calib", "o", target_fraction=t, fuse=False, calibration={},
                                            batch_size=1, **common),
        "come": lambda d, t: build_checkpoint("come", model_dir=d, calib_path="c", out_dir="o", model_name="m",
                                              settings={}, execution={}, calibration={}, target_fraction=t),
        "streamline": lambda d, t: run_streamline_job(dense_dir=str(d), target_fraction=t, **train),
        "fusegpt_train": lambda d, t: run_fusegpt_job(dense_dir=str(d), target_fraction=t, **train),
        "dlp": lambda d, t: check_target(d, t),  # workflow/scripts/dlp_checkpoint.py and dlp_order.py call it first
    }


@pytest.mark.parametrize("job", sorted(_jobs()))
def test_every_layer_method_refuses_a_bad_layer_count_before_loading(tmp_path, job):
    d = _weightless_dir(tmp_path)
    with pytest.raises(ValueError, match=r"layer-count target n8 removes 8 of the model's 8 layers; allowed: n1\.\.n7"):
        _jobs()[job](d, {"layers": 8})
    with pytest.raises(ValueError, match="sparsity target 0.01 removes no layer"):
        _jobs()[job](d, 0.01)
    assert check_target(d, {"layers": 7}) == 7 and check_target(d, 0.25) == 2


def test_a_checkpoint_at_n3_removes_three_layers_and_says_so(tmp_path):
    from layerpuzzle.evaluation.metrics import pruning_info
    from layerpuzzle.methods.dlp.pipeline import checkpoint_from_order, compute_order
    from layerpuzzle.tables.results import results_table

    model, tok = build_random_model("llama", seed=0)
    order = compute_order("reverse", model, variant={"keep_last": 0}).order
    checkpoint_from_order(model, tok, order, tmp_path / "ckpt", target_fraction={"layers": 3}, base_model="tiny")
    rec = json.loads((tmp_path / "ckpt" / "pruning.json").read_text())
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["num_hidden_layers"] == 5
    assert rec["removed_layers"] == 3 and rec["target_layers"] == 3 and rec["dense_layers"] == 8
    assert rec["target_fraction"] is None and rec["target_pct"] is None
    assert rec["sparsity_pct"] == round(100 * 3 * 36992 / TINY_TOTAL, 4) == 33.7157
    assert '"target_layers": 3' in (tmp_path / "ckpt" / "README.md").read_text()
    info = pruning_info(tmp_path / "ckpt")
    assert info == {"method": "Reverse", "variant": "", "target_pct": None, "removed_layers": 3,
                    "sparsity_pct": 33.7157, "dense_layers": 8, "target_layers": 3}
    # an MMLU-only evaluation of it: the results table leaves Avg/RPT empty and says why; its target column
    # (the paper join's key) is the sparsity the 3 layers give
    record = {"model": "tiny", "checkpoint": "reverse/n3/keep_last=0", **info,
              "tasks": {"mmlu": {"value": 0.25, "stderr": 0.02}}, "perplexity": {}}
    row = results_table([record], with_keys=True).iloc[0]
    assert row["Target (%)"] == 33.72 and row["#Removed"] == 3 and row["MMLU(5)"] == 25.0
    assert row["Avg"] != row["Avg"] and "missing ARC-c, ARC-e, HellaS, OBQA, PIQA, WinoG: no Avg/RPT" in row["Note"]


def test_a_sparsity_checkpoint_records_what_it_always_did():
    cfg = random_config("llama")
    rec = pruning_record(cfg, method="M", variant="", params={}, target_fraction=0.25, removed_layers=2)
    assert rec == {"method": "M", "variant": "", "params": {}, "target_fraction": 0.25, "target_pct": 25,
                   "removed_layers": 2, "sparsity_pct": round(100 * 2 * 36992 / TINY_TOTAL, 4), "dense_layers": 8}


def test_dense_metrics_know_the_layer_count(tmp_path):
    from layerpuzzle.evaluation.metrics import pruning_info

    (tmp_path / "config.json").write_text(random_config("llama").to_json_string())
    assert pruning_info(tmp_path)["dense_layers"] == 8
    assert pruning_info(tmp_path / "nowhere")["dense_layers"] is None


# ---------------------------------------------------------------- validation before any job
def test_layer_counts_are_validated_against_a_known_shape():
    check_references(tiny_config(targets=[0.25, "n1", "n3", "n7"]))
    with pytest.raises(ConfigError, match=r"config key `run\.targets\[1\]`: value 'n8' removes 8 layers, but model "
                                          r"'tiny' has 8; allowed: n1\.\.n7 \(at least one layer kept\)"):
        check_references(tiny_config(targets=[0.25, "n8"]))
    c = tiny_config(targets=[0.25])
    c["methods"]["mka"]["variants"] = [{"targets": ["n3", "n12"]}]
    with pytest.raises(ConfigError, match=r"`methods\.mka\.variants\[0\]\.targets\[1\]`: value 'n12' removes 12 layers"):
        check_references(c)
    with pytest.raises(ConfigError, match=r"`run\.targets\[1\]`: value 'n3' has the same path label 'n3' as "
                                          r"`run\.targets\[0\]` \('n3'\); allowed: each layer count once"):
        check_references(tiny_config(targets=["n3", "n3"]))
    # the embedded model's shape is known once prepared: the job checks it (before loading the weights)
    c = validate_config(default(), SCHEMA)
    c["run"]["targets"] = [0.3, "n99"]
    check_references(c)


@pytest.mark.parametrize("value", ["n0", "n08", "n", "sp30", "n-3", "8 layers"])
def test_malformed_layer_counts_are_rejected_by_the_schema(value):
    c = default()
    c["run"]["targets"] = [0.3, value]
    with pytest.raises(ConfigError, match=rf"config key `run\.targets\[1\]`: value '{value}' is not allowed; allowed: "
                                          r"a fraction in \(0, 1\) or n<k>, k >= 1 layers removed \(n8\)"):
        validate_config(c, SCHEMA)


def test_every_layer_method_accepts_layer_counts_in_its_variants():
    """Every method that removes layers takes n<k>; the width-pruning methods (LLM-Pruner, SliceGPT) refuse it."""
    from layerpuzzle.methods import registry

    required = {"mka": {"fusion": "described", "kernel": "described"}, "laco": {"variant": "described"},
                "fusegpt_mif": {"variant": "released"}}  # variant keys without a default
    width = [k for k in registry.keys() if registry.entry(k).checkpoint == "uneven width"]
    assert width == ["llm_pruner", "slicegpt"]
    c = default()
    for key in registry.keys():
        if key not in width:
            c.setdefault("methods", {}).setdefault(key, {})["variants"] = [
                {"targets": ["n8", 0.3], **required.get(key, {})}]
    validate_config(c, SCHEMA)
    for key in width:
        c = default()
        c.setdefault("methods", {})[key] = {"variants": [{"targets": ["n8"]}]}
        with pytest.raises(ConfigError, match=rf"`methods.{key}.variants\[0\].targets\[0\]`: value 'n8'"):
            validate_config(c, SCHEMA)


# ---------------------------------------------------------------- the plan
def test_plan_checkpoints_at_layer_counts():
    c = tiny_config(targets=[0.25, "n3"])
    c["methods"]["mka"]["variants"] = [{"targets": ["n5"], "fusion": "described", "kernel": "described"},
                                       {"fusion": "released", "kernel": "released"}]
    plan = plan_of(c)
    assert plan.method_checkpoints("mka", "tiny") == [
        "mka/n5/fusion=described,kernel=described",
        "mka/sp25/fusion=released,kernel=released", "mka/n3/fusion=released,kernel=released"]
    assert "reverse/n3/keep_last=0" in plan.checkpoints_of("tiny")
    # SLEB's greedy order serves the fractions (with Table 4's) and the layer counts
    assert plan.dlp_fractions("sleb", "early_barrier=1,latter_barrier=1", "tiny") == [0.1, 0.2, 0.25, 0.3, {"layers": 3}]
    from layerpuzzle.methods.dlp.pipeline import steps_needed

    assert steps_needed(random_config("llama"), [0.1, 0.2, 0.25, 0.3, {"layers": 3}]) == 3  # 0.3 alone is 3 too
    assert steps_needed(random_config("llama"), [0.1, {"layers": 5}]) == 5
    # the largest of a mixed list, through the model's shape: n3 (3 layers) beats 0.25 (2 layers), not 0.4 (4)
    assert plan.largest_target([0.25, "n3"], "tiny") == "n3"
    assert plan.largest_target([0.4, "n3"], "tiny") == 0.4
    assert plan.largest_target(["n2", "n10"], "tiny") == "n10"


def test_the_default_plan_has_no_layer_counts_and_no_restricted_evaluation():
    plan = default_plan()
    assert all("/sp30/" in c for c in plan.checkpoints_of(MODEL)[1:])
    assert plan.eval_task_groups() == []
    assert plan.eval_ckpt_re() == CKPT_RE
    assert plan.dlp_fractions("sleb", plan.variants("sleb", MODEL)[0].slug, MODEL) == [0.1, 0.2, 0.3]


# ---------------------------------------------------------------- per-target task lists
SEVEN = ["arc_challenge", "arc_easy", "hellaswag", "openbookqa", "piqa", "winogrande", "mmlu"]


def test_the_six_extra_tasks_are_accepted():
    c = default()
    for task in ("boolq", "race_high", "race_middle", "commonsense_qa", "wsc273", "wsc"):
        c["evaluation"]["tasks"][task] = {"limit": 20}
    c = validate_config(c, SCHEMA)
    check_references(c)
    assert list(c["evaluation"]["tasks"])[7:] == ["boolq", "race_high", "race_middle", "commonsense_qa", "wsc273", "wsc"]
    assert list(validate_config(default(), SCHEMA)["evaluation"]["tasks"]) == SEVEN  # the default is unchanged


def test_tasks_by_target_restricts_the_evaluation_of_those_checkpoints():
    c = tiny_config(targets=[0.25, "n3", "n5", "n6"])
    c["evaluation"]["tasks"]["boolq"] = {}
    c["evaluation"]["tasks_by_target"] = {"n3": ["mmlu"], "n5": ["mmlu"], "n6": ["boolq", "piqa"],
                                          "sp25": list(c["evaluation"]["tasks"])}
    check_references(c)
    plan = plan_of(c)
    everything = sorted([*SEVEN, "boolq"])  # the workflow's config has its keys sorted (config.canonical)
    assert plan.eval_tasks("dense") == plan.eval_tasks("mka/sp25/default") == everything
    assert plan.eval_tasks("mka/n3/default") == ["mmlu"]
    assert plan.eval_tasks("mka/n6/default") == ["boolq", "piqa"]
    assert plan.eval_task_groups() == [  # one rule per distinct list; a list of every task (sp25) is no restriction
        {"rule": "evaluate_checkpoint_mmlu", "tasks": ["mmlu"], "labels": ["n3", "n5"]},
        {"rule": "evaluate_checkpoint_boolq_piqa", "tasks": ["boolq", "piqa"], "labels": ["n6"]},
    ]
    # each checkpoint is matched by exactly one evaluation rule
    rules = {None: plan.eval_ckpt_re(), **{g["rule"]: plan.eval_ckpt_re(g["labels"]) for g in plan.eval_task_groups()}}
    for ckpt, rule in [("dense", None), ("mka/sp25/default", None), ("mka/n3/default", "evaluate_checkpoint_mmlu"),
                       ("reverse/n5/keep_last=0", "evaluate_checkpoint_mmlu"), ("x/n6/a=1", "evaluate_checkpoint_boolq_piqa"),
                       ("x/n30/a=1", None), ("x/n35/a=1", None)]:
        assert [r for r, pattern in rules.items() if re.fullmatch(pattern, ckpt)] == [rule], ckpt


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["evaluation"].__setitem__("tasks_by_target", {"n3": ["boolq"]}),
     r"`evaluation\.tasks_by_target\.n3\[0\]`: value 'boolq' is not a task of `evaluation\.tasks`; allowed: "
     r"arc_challenge, arc_easy, hellaswag, openbookqa, piqa, winogrande, mmlu"),
    (lambda c: c["evaluation"].__setitem__("tasks_by_target", {"n4": ["mmlu"]}),
     r"`evaluation\.tasks_by_target`: key 'n4' is not the label of a configured target \(run\.targets, a variant's "
     r"targets\); allowed: sp25, n3"),
])
def test_task_lists_name_known_tasks_and_targets(edit, message):
    c = tiny_config(targets=[0.25, "n3"])
    edit(c)
    with pytest.raises(ConfigError, match=message):
        check_references(c)


@pytest.mark.parametrize("value, message", [
    ({"x3": ["mmlu"]}, r"`evaluation\.tasks_by_target`: key 'x3' is not allowed; allowed: a target label"),
    ({"n3": ["mmlx"]}, r"`evaluation\.tasks_by_target\.n3\[0\]`: value 'mmlx' is not allowed; allowed: arc_challenge"),
    ({"n3": []}, r"`evaluation\.tasks_by_target\.n3`: \[\] should be non-empty"),
])
def test_task_lists_are_checked_by_the_schema(value, message):
    c = default()
    c["evaluation"]["tasks_by_target"] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(c, SCHEMA)


# ---------------------------------------------------------------- MKA's compression ratio
def test_compression_ratio_by_hand():
    # MKA Table 2 / Tables 3-4 (Llama3-8B, 32 layers): 11..14 layers removed = CR 34.375 / 37.5 / 40.625 / 43.75 %
    assert [100 * compression_ratio(32, 32 - k) for k in (11, 12, 13, 14)] == [34.375, 37.5, 40.625, 43.75]
    assert compression_ratio(32, 31) == 1 / 32 == 0.03125 and compression_ratio(32, 32) == 0.0
    # MKA Table 1, int4 (Q = 4): 18 of 32 kept = (32 - 4.5) / 32 = 85.9375 % (printed 85.94); 16 of 32 and
    # 20 of 40 = 87.5 %; 20 of 32 = 84.375 % (printed 84.38)
    assert compression_ratio(32, 18, 4) == 27.5 / 32 == 0.859375
    assert compression_ratio(32, 16, 4) == compression_ratio(40, 20, 4) == 0.875
    assert compression_ratio(32, 20, 4) == 0.84375
    # SmolLM2 (30 layers) at n8: CR 26.67 %, while the parameter sparsity counts the embeddings too (21.05 %)
    smol = ArchSpec(576, 30, 9, 3, 64, 1536, 49152, True)
    assert round(100 * compression_ratio(30, 30 - removed_for(smol, "n8")), 4) == 26.6667
    assert round(100 * sparsity(smol, 8), 2) == 21.05
    for bad in [(32, 33), (32, -1), (0, 0), (32, 18, 0.5), (32, 17.5)]:
        with pytest.raises(ValueError, match="allowed"):
            compression_ratio(*bad)
