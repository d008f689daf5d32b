"""The real workflow through profiles/slurm on a real SLURM cluster (tests/slurm).

tests/slurm/run_slurm_e2e.sh starts a single-node cluster with one fake GPU, runs
`snakemake --profile profiles/slurm all_tables -s Snakefile --configfile
tests/configs/slurm_tiny.yaml` in a scratch directory under a bounded timeout, checks with
`scontrol show job` that exactly the model-heavy rules asked SLURM for a GPU, and
stops the cluster. Root only, ~4 min on an idle 2-core machine: runs only with LAYERPUZZLE_SLURM_TESTS=1.
The config checks below are fast and always run.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from layerpuzzle.config import check_references, validate_config
from workflow_utils import method_keys

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "tests" / "configs" / "slurm_tiny.yaml"
# the rules that declare resources: gpu (heavy_resources) and run for slurm_tiny.yaml
GPU_RULES = ["layer_scores", "dlp_checkpoint", "evaluate_checkpoint"]


def test_slurm_tiny_config_is_valid_small_and_lists_every_method():
    cfg = yaml.safe_load(CONFIG.read_text())
    assert set(cfg["methods"]) == set(method_keys())  # an unlisted method would run by default
    assert sorted(k for k, v in cfg["methods"].items() if v["enabled"]) == ["reverse"]
    validate_config(cfg, REPO / "config" / "schema.yaml")
    check_references(cfg)
    assert cfg["resources"]["gpu"] == 1 and cfg["resources"]["threads"] == 1
    assert cfg["resources"]["mem_mb"] <= 4000 and cfg["resources"]["runtime"] > 0
    assert cfg["device"] == "cpu"


@pytest.mark.slurm
@pytest.mark.skipif(os.environ.get("LAYERPUZZLE_SLURM_TESTS") != "1",
                    reason="set LAYERPUZZLE_SLURM_TESTS=1 (root; starts a SLURM cluster)")
def test_real_workflow_on_real_slurm(tmp_path, mirror):
    env = dict(os.environ, LAYERPUZZLE_DATA_MIRROR=str(mirror), E2E_EXPECT_GPU_RULES=",".join(GPU_RULES),
               E2E_TIMEOUT_S="480", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    run = subprocess.run(
        # the target first: --configfile takes every argument after it (nargs +)
        [str(REPO / "tests/slurm/run_slurm_e2e.sh"), str(tmp_path), "all_tables", "-s", str(REPO / "Snakefile"),
         "--configfile", str(CONFIG)],
        env=env, capture_output=True, text=True, timeout=660,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert "PASS: GPU requests match" in out
    table = pd.read_csv(tmp_path / "results" / "tables" / "results.csv")
    assert sorted(table.Method) == ["Dense", "Reverse"]
    assert table["PIQA"].notna().all() and (table["Wiki-2"] > 1).all()
    # every job ran as a SLURM job and kept its log; the GPU jobs computed on the CPU
    for rule in ["prepare_model", "calibration_set", "dlp_order_reverse", *GPU_RULES, "results_table"]:
        assert list((tmp_path / "logs" / "slurm" / f"rule_{rule}").rglob("*.log")), rule
    prov = json.loads(next((tmp_path / "results" / "random-llama" / "eval" / "dense").glob("metrics.prov.json"))
                      .read_text())
    assert prov["params"]["device"] == "cpu"
