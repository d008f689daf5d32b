"""Post-training end to end on a random 8-layer LLaMA: CoMe-sp/-mp, LLM-Streamline, FuseGPT with training,
resume after a real SIGKILL under Snakemake, results rows, Table 7 and the post-training table."""
import json

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from conftest import REPO
from workflow_utils import scheduled_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slow

KEYS = ("come_sp", "come_mp", "streamline", "fusegpt_train")
DATA = {"dataset": "wikitext2", "n": 4, "seed": 11, "seq_len": 32}
VARIANTS = {
    "come_sp": {"targets": [0.25], "lr": 1e-3, "steps": 6, "batch_size": 2},
    "come_mp": {"targets": [0.25], "lrs": [1e-3, 1e-4], "steps": 3, "batch_size": 2},
    "streamline": {"targets": [0.25], "steps": 6, "batch_size": 2, "val_chunks": 2, "eval_every": 3},
    "fusegpt_train": {"targets": [0.25], "steps": 2, "batch_size": 2, "rank": 4, "lora_rank": 4},
}
METHODS = {"come_sp": "CoMe-sp", "come_mp": "CoMe-mp", "streamline": "LLM-Streamline", "fusegpt_train": "FuseGPT"}


def come_rule_exists() -> bool:
    return "rule come:" in (REPO / "rules" / "come.smk").read_text()


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    if not come_rule_exists():
        pytest.skip("rules/come.smk has no `come` rule yet: CoMe-sp/-mp have no CoMe checkpoint to distil")
    tmp = tmp_path_factory.mktemp("posttrain")
    path = tiny_config(tmp, enable=("come", *KEYS))
    cfg = yaml.safe_load(path.read_text())
    for key in KEYS:
        cfg["methods"][key].update({"data": DATA, "checkpoint_every": 2, "variants": [VARIANTS[key]]})
    cfg["methods"]["come_mp"]["teacher_streaming"] = True  # CoMe-sp reads stored activations, CoMe-mp streams
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return tmp, path


def ckpt_dir(tmp, key):
    return next((tmp / "results" / "random-llama" / "pruned" / key / "sp25").iterdir())


def test_killed_job_resumes_under_snakemake(run, monkeypatch):
    tmp, cfg = run
    res = snakemake(tmp, cfg, "-n", "all_tables")
    target = [line.split("output: ")[1] for line in (res.stdout + res.stderr).splitlines()
              if "output: results/random-llama/pruned/come_sp/" in line][0]
    monkeypatch.setenv("LAYERPUZZLE_STOP_AFTER_STEPS", "3:kill")  # SIGKILL after step 3; checkpoint at 2
    killed = snakemake(tmp, cfg, "--cores", "2", target, check=False)
    assert killed.returncode != 0
    state = tmp / target.replace("/pruned/", "/train_state/")
    assert (state / "come_sp.state.pt").is_file() and not (tmp / target).exists()
    monkeypatch.delenv("LAYERPUZZLE_STOP_AFTER_STEPS")
    snakemake(tmp, cfg, "--cores", "2", target)
    training = json.loads((tmp / target / "training.json").read_text())
    # the rerun resumed at the step-2 checkpoint and executed only steps 2..5
    assert training["phases"][0]["resumed_from"] == 2 and training["phases"][0]["steps"] == 6
    assert training["phases"][0]["steps_run"] == 4
    assert not state.exists()  # the resume state is removed after success
    resumed = load_file(str(tmp / target / "model.safetensors"))
    snakemake(tmp, cfg, "--cores", "2", "--force", target)  # the same job, uninterrupted
    fresh = json.loads((tmp / target / "training.json").read_text())["phases"][0]
    assert fresh["resumed_from"] is None and fresh["steps_run"] == 6
    uninterrupted = load_file(str(tmp / target / "model.safetensors"))
    assert sorted(resumed) == sorted(uninterrupted)
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)  # bit for bit


def test_all_tables_builds_rows_and_tables(run):
    tmp, cfg = run
    snakemake(tmp, cfg, "--cores", "2", "all_tables")
    for key in KEYS:
        ckpt = ckpt_dir(tmp, key)
        model = AutoModelForCausalLM.from_pretrained(ckpt)
        assert model.config.num_hidden_layers == 6
        assert (ckpt / "loss_curve.png").is_file() and (ckpt / "provenance.json").is_file()
        assert json.loads((ckpt / "pruning.json").read_text())["method"] == METHODS[key]
    assert len(list((tmp / "results/random-llama/teacher").rglob("activations.safetensors"))) == 1  # CoMe-sp's
    for key, mode in (("come_sp", "stored"), ("come_mp", "streaming")):
        assert json.loads((ckpt_dir(tmp, key) / "training.json").read_text())["teacher"] == mode
    results = pd.read_csv(tmp / "results/tables/results.csv")
    assert set(METHODS.values()) <= set(results.Method)
    t7 = pd.read_csv(tmp / "results/tables/table07_posttrain.csv")
    ours = t7[t7.Source == "ours"].set_index("Method")
    assert ours.loc["CoMe-sp", "T_layer"] == 1 * ours.loc["CoMe-sp", "#Layers"] * 1 * 6 * 2 * 32
    assert ours.loc["LLM-Streamline", "T_layer"] == 1 * 1 * 1 * 6 * 2 * 32
    assert ours.loc["FuseGPT", "#Iterations"] == 2
    post = pd.read_csv(tmp / "results/tables/table_posttrain.csv")
    assert post.Method.tolist() == ["Dense", "CoMe", "CoMe-mp", "CoMe-sp", "LLM-Streamline", "FuseGPT"]
    assert post.set_index("Method").loc["CoMe", "T_layer"] == 0


def test_second_run_schedules_nothing(run):
    tmp, cfg = run
    res = snakemake(tmp, cfg, "-n", "all_tables")
    assert scheduled_jobs(res.stdout + res.stderr) == {}, res.stdout[-2000:]
