"""Checkpoint ids of the post-processing stage `posttrain` and derived models, without Snakemake."""
import re

import pytest

from conftest import default_plan
from layerpuzzle.plan import CKPT_RE, split_posttrain

M, D = "smollm2-135m", "smollm2-135m-laco-pt"


@pytest.fixture(scope="module")
def plan():
    return default_plan()


def test_split_and_directories(plan):
    slug = plan.posttrain_slug("app-c")
    assert slug == plan.posttrain_slug(None)  # the first variant
    assert slug.startswith("batch_size=8,betas=0.9+0.95,") and "lr=0.0002" in slug and "steps=30" in slug
    pid = plan.posttrain_id("laco/n8/variant=described", "app-c")
    assert pid == f"laco/n8/variant=described/posttrain/{slug}"
    assert split_posttrain(pid) == ("laco/n8/variant=described", slug)
    assert split_posttrain("laco/n8/variant=described") is None and split_posttrain("dense") is None
    assert plan.checkpoint_dir(M, pid) == f"results/{M}/posttrain/lm/laco/n8/variant=described/{slug}"
    assert plan.checkpoint_dir(M, f"dense/posttrain/{slug}") == f"results/{M}/posttrain/lm/dense/{slug}"
    assert plan.checkpoint_dir(M, "laco/n8/variant=described") == f"results/{M}/pruned/laco/n8/variant=described"
    assert plan.metrics_path(M, pid) == f"results/{M}/eval/{pid}/metrics.json"
    for ckpt in ("dense", pid, f"dense/posttrain/{slug}", "laco/sp30/variant=described"):
        assert re.fullmatch(CKPT_RE, ckpt) and re.fullmatch(plan.eval_ckpt_re(), ckpt)
    assert not re.fullmatch(CKPT_RE, f"{pid}/posttrain/{slug}")  # one stage per id; chain through derived models
    assert plan.eval_tasks(pid) == plan.eval_tasks("laco/n8/variant=described")


def test_a_changed_setting_is_a_new_path(plan):
    slug = plan.posttrain_slug("app-c")
    other = slug.replace("lr=0.0002", "lr=0.001")
    assert plan.posttrain_variant(other)["lr"] == 0.001 and plan.posttrain_variant(other)["betas"] == [0.9, 0.95]
    data = default_plan(posttrain_lm={"data": {"dataset": "c4", "n": 50, "seed": 1, "seq_len": 256},
                                      "variants": [{"label": "app-c"}]})
    assert data.posttrain_slug("app-c") != slug and "data.dataset=c4" in data.posttrain_slug("app-c")
    assert data.posttrain_data_path(M).endswith("c4-n50-s1-len256.safetensors")


def test_derived_model_chain_and_rows(plan):
    slug = plan.posttrain_slug("app-c")
    assert plan.derived_checkpoint(D) == (M, f"laco/n8/variant=described/posttrain/{slug}")
    assert plan.derived_source_dir(D) == f"results/{M}/posttrain/lm/laco/n8/variant=described/{slug}"
    assert plan.derived_chain(D) == [{"model": M, "checkpoint": f"laco/n8/variant=described/posttrain/{slug}",
                                      "as": D}]
    rows = plan.laco_table06_rows()
    assert [(r["row"], r["model"], r["checkpoint"]) for r in rows] == [
        ("Dense*", M, "dense"), ("LaCo", M, "laco/n8/variant=described"),
        ("LaCo+post-train", M, f"laco/n8/variant=described/posttrain/{slug}"),
        ("LaCo+post-train+re-prune", D, "laco/n6/variant=described")]
    assert [r["checkpoint"] for r in plan.laco_table21_rows()] == [
        "laco/sp45/variant=described", f"laco/sp45/variant=described/posttrain/{slug}",
        "llm_pruner/sp45/default", f"llm_pruner/sp45/default/posttrain/{slug}"]
    assert D not in plan.run_models and all(D not in p for p in plan.all_metrics())  # not in all_tables


@pytest.mark.parametrize("entry, message", [
    ({"derived_from": "nope", "checkpoint": "dense"}, "`models.x.derived_from`: value 'nope' is not a model"),
    ({"derived_from": "x", "checkpoint": "dense"}, "`models.x.derived_from`: value 'x' is not a model"),
    ({"derived_from": M, "checkpoint": "laco/sp30/nope"}, "`models.x.checkpoint`: value 'laco/sp30/nope'"),
    ({"derived_from": M, "checkpoint": "foo/sp30/default"}, "names method 'foo', which is not registered"),
    ({"derived_from": M, "checkpoint": "laco/sp30/variant=described/posttrain/nolabel"},
     "posttrain_lm path component 'nolabel'"),
    ({"derived_from": M, "checkpoint": "sp30"}, "is not a checkpoint id"),
])
def test_bad_derived_models_name_key_value_and_allowed(entry, message):
    from conftest import load_validated_config

    cfg = load_validated_config()
    cfg["models"]["x"] = {"source": "derived", **entry}
    from layerpuzzle.config import load_schema
    from layerpuzzle.plan import Plan
    from conftest import REPO

    with pytest.raises(ValueError, match=re.escape(message)):
        Plan(cfg, load_schema(REPO / "config" / "schema.yaml")).check_derived()


def test_a_cycle_of_derived_models_is_rejected():
    from conftest import REPO, load_validated_config
    from layerpuzzle.config import load_schema
    from layerpuzzle.plan import Plan

    cfg = load_validated_config()
    cfg["models"]["a"] = {"source": "derived", "derived_from": "b", "checkpoint": "dense"}
    cfg["models"]["b"] = {"source": "derived", "derived_from": "a", "checkpoint": "dense"}
    with pytest.raises(ValueError, match="a cycle"):
        Plan(cfg, load_schema(REPO / "config" / "schema.yaml")).check_derived()


def test_table_settings_must_name_a_derived_model():
    tables = {"table06_reprune": {"model": M, "checkpoint": "laco/n6/variant=described"}, "table21": None}
    plan = default_plan(posttrain_lm={"variants": [{"label": "app-c"}], "tables": tables})
    with pytest.raises(ValueError, match=r"`posttrain_lm.tables.table06_reprune.model`: value 'smollm2-135m' is not a "
                                         r"derived model .*allowed: smollm2-135m-laco-pt"):
        plan.check_posttrain_tables()
    with pytest.raises(ValueError, match=r"`posttrain_lm.tables.table21`: value null; allowed"):
        plan.laco_posttrain_rows("table21", required=True)
