"""CoMe and CoMe-P end to end: checkpoints, artifacts, results rows and an ablation table (random 8-layer LLaMA)."""
import json

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from workflow_utils import checkpoint_slug, scheduled_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slow

CALIB = {"dataset": "wikitext2", "n": 8, "seed": 10, "seq_len": 64}
PRUNED = ("results", "random-llama", "pruned")


def come_config(tmp):
    path = tiny_config(tmp, enable=("come", "come_p"))
    cfg = yaml.safe_load(path.read_text())
    cfg["methods"]["come"].update(
        calibration=CALIB,
        ablations={"in_all_tables": True, "target": 0.25, "p": [1, float("inf")], "calib_rows": [8], "layers_per_merge": [2],
                   "calib_dataset": ["wikitext2", "alpaca"], "calib_dataset_packing": {"alpaca": "per_example"}},
    )
    cfg["methods"]["come_p"].update(calibration=CALIB, granularity=2, variants=[{"targets": [0.25]}])
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("come")
    cfg = come_config(tmp)
    snakemake(tmp, cfg, "--cores", "2", "all_tables")
    return tmp, cfg


def test_paths_name_the_method_level_calibration(run):
    """The calibration set configured above (n 8, 64 tokens; schema default 64 rows of 512) is in every path."""
    _, cfg = run
    assert checkpoint_slug(cfg, "come") == "calibration.n=8,calibration.seq_len=64"
    assert checkpoint_slug(cfg, "come", {"p": float("inf")}) == "calibration.n=8,calibration.seq_len=64,p=inf"
    assert checkpoint_slug(cfg, "come_p") == "calibration.n=8,calibration.seq_len=64,granularity=2"


def test_checkpoints_load_and_carry_their_records(run):
    tmp, cfg = run
    ids = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(0))
    for key, variant in (("come", {}), ("come_p", {}), ("come", {"p": float("inf")})):
        slug = checkpoint_slug(cfg, key, variant)
        ckpt = tmp.joinpath(*PRUNED, key, "sp25", slug)
        model = AutoModelForCausalLM.from_pretrained(ckpt)
        assert model.config.num_hidden_layers == 6
        with torch.no_grad():
            assert torch.isfinite(model(ids).logits).all()
        lmap = json.loads((ckpt / "layer_map.json").read_text())
        assert sorted(x for e in lmap for x in e["teacher_layers"]) == list(range(8))
        its = pd.read_parquet(ckpt / "iterations.parquet")
        assert its.n_layers.tolist() == [8, 7]
        assert sorted(p.name for p in (ckpt / "sensitivity").iterdir()) == ["iter_00.safetensors", "iter_01.safetensors"]
        assert len(load_file(str(ckpt / "sensitivity" / "iter_01.safetensors"))) == 2 * 7
        prov = json.loads((ckpt / "provenance.json").read_text())
        assert prov["extra"]["layer_forwards"] == its.layer_forwards.sum() > 0
        assert json.loads((ckpt / "come_run.json").read_text())["layer_forwards"] == prov["extra"]["layer_forwards"]
        if key == "come_p":
            cands = pd.read_parquet(ckpt / "candidates.parquet")
            assert cands.groupby("iteration").size().tolist() == [3, 3] and cands.chosen.sum() == 2
        if variant:
            assert its.ratios.map(sorted).tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_results_rows_and_ablation_table(run):
    tmp, _ = run
    table = pd.read_csv(tmp / "results" / "tables" / "results.csv")
    assert set(table.Method) == {"Dense", "CoMe", "CoMe-P"}
    t11 = pd.read_csv(tmp / "results" / "tables" / "table11_p.csv", dtype={"p": str})
    assert t11.p.tolist() == ["1", "inf"]
    assert t11["Avg paper"].tolist() == [48.17, 46.26] and t11["Wiki-2 paper"].tolist() == [16.53, 21.21]
    assert t11["Wiki-2"].notna().all()
    t14 = pd.read_csv(tmp / "results" / "tables" / "table14_calib_dataset.csv")
    assert t14.Dataset.tolist() == ["wiki2", "Alpaca"] and t14["C4 paper"].tolist() == [19.93, 25.65]
    # the released Alpaca loader: one EOS-padded window per example
    pex = load_file(tmp / "results" / "random-llama" / "calib" /
                    f"alpaca-n{CALIB['n']}-s{CALIB['seed']}-len{CALIB['seq_len']}-pex.safetensors")["input_ids"]
    assert pex.shape == (CALIB["n"], CALIB["seq_len"])


def test_second_run_schedules_nothing(run):
    tmp, cfg = run
    res = snakemake(tmp, cfg, "-n", "all_tables")
    assert scheduled_jobs(res.stdout + res.stderr) == {}, res.stdout[-2000:]


def test_one_checkpoint_by_path_runs_only_its_chain(tmp_path):
    cfg = come_config(tmp_path)
    slug = checkpoint_slug(cfg, "come", {"p": float("inf")})
    res = snakemake(tmp_path, cfg, "-n", f"results/random-llama/pruned/come/sp25/{slug}")
    assert scheduled_jobs(res.stdout + res.stderr) == {"prepare_model": 1, "calibration_set": 1, "come": 1}
    # the same settings under a path that leaves out the method-level ones: refused, with the right name
    res = snakemake(tmp_path, cfg, "-n", "results/random-llama/pruned/come/sp25/p=inf", check=False)
    assert res.returncode != 0 and f"are named {slug!r}; use that path" in res.stdout + res.stderr
