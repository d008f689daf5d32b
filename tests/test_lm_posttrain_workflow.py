"""LM post-training and re-pruning end to end on a random 8-layer LLaMA (LaCo Tables 6/24, Fig. 3):
LaCo removes 2 layers, the LaCo checkpoint is post-trained and evaluated, a derived model makes it a dense model
that LaCo prunes again; re-pruning rebuilds when, and only when, the post-training changes; bad derived models
and sources are rejected before any job runs."""
import json

import pandas as pd
import pytest
import yaml
from safetensors.torch import load_file

from workflow_utils import scheduled_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slow

MODEL, DERIVED = "random-llama", "random-llama-pt"
VARIANT = {"label": "app-c", "steps": 4, "batch_size": 2, "lr": 1e-3}


def config(tmp, **changes):
    path = tiny_config(tmp, enable=())
    cfg = yaml.safe_load(path.read_text())
    cfg["models"][DERIVED] = {"source": "derived", "derived_from": MODEL,
                              "checkpoint": "laco/n2/variant=described/posttrain/app-c"}
    cfg["posttrain_lm"] = {"data": {"dataset": "wikitext2", "n": 8, "seed": 10, "seq_len": 64},
                           "checkpoint_every": 2, "variants": [dict(VARIANT)],
                           "tables": {"table06_reprune": {"model": DERIVED, "checkpoint": "laco/n1/variant=described"},
                                      "table21": None}}
    for key, value in changes.items():
        section, _, sub = key.partition(".")
        if sub:
            cfg[section][sub] = value
        else:
            cfg[section] = value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("lm_posttrain")
    cfg = config(tmp)
    snakemake(tmp, cfg, "--cores", "2", "laco_table06_24_posttrain")
    return tmp, cfg


def test_table_rows_chain_and_checkpoints(built):
    tmp, _ = built
    table = pd.read_csv(tmp / "results" / "tables" / "laco_table06_24_posttrain.csv")
    assert list(table["Row"]) == ["Dense*", "LaCo", "LaCo+post-train", "LaCo+post-train+re-prune"]
    assert list(table["Layers"]) == [8, 6, 6, 5]
    kept = list(table["Params kept (%)"])
    assert kept[0] == 100 and kept[1] == kept[2] and kept[3] < kept[2] < 100
    assert table["Tokens seen"].iloc[2] == 4 * 2 * 64  # steps x batch x seq_len
    vs = pd.read_csv(tmp / "results" / "tables" / "laco_table06_24_posttrain_vs_paper.csv")
    paper = vs[(vs["Row"] == "LaCo+post-train") & (vs["Task"] == "hellaswag")]
    assert float(paper["Paper (Llama2-7B)"].iloc[0]) == 61.88  # LaCo Table 24
    assert (tmp / "results" / "figures" / "laco_fig3_loss.png").stat().st_size > 1000

    pt_dirs = list((tmp / "results" / MODEL / "posttrain" / "lm" / "laco" / "n2" / "variant=described").iterdir())
    assert len(pt_dirs) == 1
    pt = pt_dirs[0]
    training = json.loads((pt / "training.json").read_text())
    assert training["source_checkpoint"] == "laco/n2/variant=described"
    assert training["phases"][0]["steps"] == 4 and training["tokens_seen"] == 512
    assert (pt / "loss_curve.png").is_file() and (pt / "loss_history.csv").is_file()
    assert not (tmp / "results" / MODEL / "train_state").exists() or not any(
        (tmp / "results" / MODEL / "train_state").rglob("*.pt"))
    laco = load_file(str(tmp / "results" / MODEL / "pruned" / "laco" / "n2" / "variant=described" / "model.safetensors"))
    trained = load_file(str(pt / "model.safetensors"))
    assert sorted(laco) == sorted(trained)
    assert all(not (laco[k] == trained[k]).all() for k in laco if k.endswith("proj.weight"))  # every weight trained
    assert json.loads((pt / "pruning.json").read_text())["posttrain"]["source"] == "laco/n2/variant=described"

    dense = tmp / "results" / DERIVED / "dense"
    chain = json.loads((dense / "derived.json").read_text())["chain"]
    assert chain == [{"model": MODEL, "checkpoint": f"laco/n2/variant=described/posttrain/{pt.name}", "as": DERIVED}]
    assert load_file(str(dense / "model.safetensors")).keys() == trained.keys()
    prov = json.loads((tmp / "results" / DERIVED / "pruned" / "laco" / "n1" / "variant=described" /
                       "provenance.json").read_text())
    assert prov["inputs"]["model"][0]["path"] == f"results/{DERIVED}/dense"  # the path names the chain
    derive = json.loads((tmp / "results" / DERIVED / "dense.prov.json").read_text())
    assert derive["rule"] == "derive_model" and derive["params"]["chain"] == chain
    assert derive["inputs"]["ckpt"][0]["path"] == str(pt.relative_to(tmp))


def test_reprune_rebuilds_when_and_only_when_the_posttraining_changes(built):
    tmp, _ = built
    same = snakemake(tmp, config(tmp), "-n", "laco_table06_24_posttrain")
    assert scheduled_jobs(same.stdout + same.stderr) == {}
    # unrelated settings: the scores' calibration set and an execution-only setting of another block
    unrelated = config(tmp, **{"calibration": {"come": {"dataset": "wikitext2", "n": 12, "seed": 10, "seq_len": 64}}})
    res = snakemake(tmp, unrelated, "-n", "laco_table06_24_posttrain")
    assert scheduled_jobs(res.stdout + res.stderr) == {}
    # a post-training setting: the post-training, the derived model, the re-pruning and what follows are rebuilt,
    # the first LaCo checkpoint is not
    changed = config(tmp, **{"posttrain_lm.variants": [{**VARIANT, "lr": 2e-3}]})
    jobs = scheduled_jobs(snakemake(tmp, changed, "-n", "laco_table06_24_posttrain").stdout)
    assert jobs.get("lm_posttrain") == 1 and jobs.get("derive_model") == 1 and jobs.get("laco") == 1
    assert jobs.get("evaluate_checkpoint") == 2  # LaCo+post-train and the re-pruned checkpoint


@pytest.mark.parametrize("change, message", [
    ({"models": {"random-llama": {"source": "random", "arch": "llama", "seed": 0, "dtype": "float32"},
                 DERIVED: {"source": "derived", "derived_from": "nope", "checkpoint": "dense"}}},
     "`models.random-llama-pt.derived_from`: value 'nope' is not a model; allowed:"),
    ({"models": {"random-llama": {"source": "random", "arch": "llama", "seed": 0, "dtype": "float32"},
                 DERIVED: {"source": "derived", "derived_from": "random-llama", "checkpoint": "foo/n2/x"}}},
     "`models.random-llama-pt.checkpoint`: value 'foo/n2/x' names method 'foo', which is not registered"),
    ({"models": {"random-llama": {"source": "random", "arch": "llama", "seed": 0, "dtype": "float32"},
                 DERIVED: {"source": "derived", "derived_from": "random-llama",
                           "checkpoint": "laco/n2/variant=described/posttrain/nolabel"}}},
     "posttrain_lm path component 'nolabel'"),
])
def test_bad_derived_models_are_rejected_before_any_job(tmp_path, mirror, change, message):
    cfg = config(tmp_path, **change)
    res = snakemake(tmp_path, cfg, "-n", "laco_table06_24_posttrain", check=False)
    assert res.returncode != 0
    assert message in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


def test_a_source_the_plan_cannot_build_is_rejected(tmp_path, mirror):
    cfg = config(tmp_path)
    res = snakemake(tmp_path, cfg, "-n", f"results/{MODEL}/posttrain/lm/laco/n2/variant=nope/x=1", check=False)
    assert res.returncode != 0
    assert "variant=nope" in res.stdout + res.stderr
