"""The DLP baselines end to end: orders, checkpoints, results rows and Table 4 on a random 8-layer LLaMA."""
import json

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM

from layerpuzzle.models import architecture as arch
from layerpuzzle.models.sources import load_model
from workflow_utils import scheduled_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slow

KEYS = ("mag_plus", "taylor_plus", "shortgpt", "sleb", "reverse")
TABLE4 = "results/tables/table04_layer_order.csv"


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("dlp")
    cfg = tiny_config(tmp, enable=KEYS)
    snakemake(tmp, cfg, "--cores", "2", "all_tables")  # Table 4 is one of all_tables' outputs
    return tmp, cfg


def test_orders_are_artifacts(run):
    tmp, _ = run
    res = tmp / "results" / "random-llama" / "orders"
    mag = pd.read_parquet(next(res.glob("mag_plus/data-free/*/order.parquet")))
    assert sorted(mag.layer) == list(range(8)) and set(mag.layer[:2]) == {4, 5}  # "+" keeps 0-3, 6, 7
    sleb = pd.read_parquet(next(res.glob("sleb/wikitext2-n8-s10-len256/*/order.parquet")))
    assert len(sleb) == 3  # the largest Table 4 level (3 layers) > the 0.25 target (2 layers)
    cands = pd.read_parquet(next(res.glob("sleb/*/*/candidates.parquet")))
    assert cands.groupby("iteration").size().tolist() == [6, 5, 4]
    short = pd.read_parquet(next(res.glob("shortgpt/pg19-n256-s10-len512/*/order.parquet")))
    assert short.attrs["info"]["calibration_substitute"] is True
    assert short.attrs["info"]["calibration_windows_used"] == 12


def test_checkpoints_load_and_equal_dropped_dense(run):
    tmp, _ = run
    dense, _ = load_model(tmp / "results" / "random-llama" / "dense")
    ids = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(0))
    for key in KEYS:
        ckpt = next((tmp / "results" / "random-llama" / "pruned" / key / "sp25").iterdir())
        model = AutoModelForCausalLM.from_pretrained(ckpt)
        removed = json.loads((ckpt / "pruning.json").read_text())["params"]["removed_layers"]
        assert model.config.num_hidden_layers == 6 and len(removed) == 2
        ref = arch.drop_layers(load_model(tmp / "results" / "random-llama" / "dense")[0], removed)
        with torch.no_grad():
            torch.testing.assert_close(model(ids).logits, ref(ids).logits, rtol=0, atol=0)
        assert (ckpt / "provenance.json").is_file()
    assert dense.config.num_hidden_layers == 8


def test_rows_and_table4(run):
    tmp, _ = run
    table = pd.read_csv(tmp / "results" / "tables" / "results.csv")
    assert set(table.Method) == {"Dense", "Mag+", "Taylor+", "ShortGPT (PG19 substitute)", "SLEB", "Reverse"}
    assert (table[table.Method != "Dense"]["Sparsity (%)"] > 20).all()
    t4 = pd.read_csv(tmp / TABLE4, keep_default_na=False)
    assert t4.Method.tolist() == ["Mag+", "Taylor+", "ShortGPT", "SLEB", "Reverse"]
    col = [c for c in t4.columns if c.startswith("random-llama")][0]
    assert all(len(cell.split("/")) == 3 for cell in t4[col])  # 1/2/3 layers at ~10/20/30 %
    assert t4.loc[t4.Method == "Reverse", col].item() == "7/6/5"
    assert "PG19 substitute" in t4.loc[t4.Method == "ShortGPT", "Note"].item()


def test_second_run_schedules_nothing(run):
    tmp, cfg = run
    res = snakemake(tmp, cfg, "-n", "all_tables")
    assert scheduled_jobs(res.stdout + res.stderr) == {}, res.stdout[-2000:]
