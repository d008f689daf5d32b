"""LaCo, MKA and FuseGPT end to end: the real DAG on a random 8-layer LLaMA (target 25 % = 2 layers)."""
import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from workflow_utils import snakemake, tiny_config

pytestmark = pytest.mark.slow

KEYS = ("laco", "mka", "fusegpt_mi", "fusegpt_mif")
LABELS = {"LaCo", "LaCo (released)", "MKA", "MKA (released)", "FuseGPT-MI", "FuseGPT-MI+F",
          "FuseGPT-MI+F (released)"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("merge")
    cfg = tiny_config(tmp, enable=KEYS, evaluation={
        "batch_size": 4, "max_length": 256,
        "perplexity": {"datasets": ["wikitext2"], "seq_len": 64, "max_windows": {"wikitext2": 2}},
        "tasks": {"arc_easy": {"limit": 2}},
    })
    snakemake(tmp, cfg, "--cores", "2", "all_tables")
    return tmp


def _ckpt(tmp, key, slug):
    return tmp / "results" / "random-llama" / "pruned" / key / "sp25" / slug


def test_every_variant_is_a_loadable_checkpoint_with_a_labelled_row(run):
    table = pd.read_csv(run / "results" / "tables" / "results.csv")
    assert LABELS <= set(table.Method)
    assert (table[table.Method != "Dense"]["Sparsity (%)"] == 22.48).all()
    for d in (run / "results" / "random-llama" / "pruned").glob("*/sp25/*"):
        model = AutoModelForCausalLM.from_pretrained(d)
        assert model.config.num_hidden_layers == 6 and len(model.model.layers) == 6
        assert [l.self_attn.layer_idx for l in model.model.layers] == list(range(6))
        record = json.loads((d / "pruning.json").read_text())
        assert record["removed_layers"] == 2 and (d / "provenance.json").is_file()


def test_released_variants_reproduce_the_documented_behaviour(run):
    dense = load_file(run / "results" / "random-llama" / "dense" / "model.safetensors")
    mka = load_file(_ckpt(run, "mka", "fusion=released,kernel=released") / "model.safetensors")
    assert all(torch.equal(v, dense[k]) for k, v in mka.items())  # the dense model minus its last 2 layers
    assert "model.layers.6.mlp.up_proj.weight" not in mka
    mi = load_file(_ckpt(run, "fusegpt_mi", "default") / "model.safetensors")
    mif = load_file(_ckpt(run, "fusegpt_mif", "variant=released") / "model.safetensors")
    assert mi.keys() == mif.keys() and all(torch.equal(mi[k], mif[k]) for k in mi)
    laco = json.loads((_ckpt(run, "laco", "variant=released") / "laco.json").read_text())
    assert laco["removed"] == 2 and laco["shortfall"] == 0


def test_heat_maps_and_npib_matrix(run):
    index = (run / "results" / "tables" / "figures.md").read_text()
    for name in ("bi_sbi.png", "npib_described.png", "npib_released.png"):
        assert (run / "results" / "figures" / "random-llama" / name).stat().st_size > 1000
        assert f"../figures/random-llama/{name}" in index
    npib = pd.read_parquet(run / "results" / "random-llama" / "mka" / "npib-described.parquet")
    S = npib.pivot(index="layer_i", columns="layer_j", values="npib").to_numpy()
    assert S.shape == (8, 8) and (S == S.T).all()


def test_table4_has_the_fusegpt_mi_order(run):
    """FuseGPT-MI's removal order joins Table 4; at 25 % (2 of 8 layers) it reaches the 10 and 20 % levels."""
    removed = json.loads((_ckpt(run, "fusegpt_mi", "default") / "fusegpt.json").read_text())["removed_original"]
    table = pd.read_csv(run / "results" / "tables" / "table04_layer_order.csv")
    row = table[table.Method == "FuseGPT-MI"].iloc[0]
    cell = next(v for k, v in row.items() if k.startswith("random-llama"))
    assert cell == f"{removed[0]}/{removed[1]}"
    assert "levels above 2 not run" in row.Note
    order_dir = run / "results" / "random-llama" / "orders" / "fusegpt_mi" / "sp25" / "default"
    assert json.loads((order_dir / "order.prov.json").read_text())["rule"] == "fusegpt_mi_order"
