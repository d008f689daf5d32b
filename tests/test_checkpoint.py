"""Pruned checkpoints are standard HF directories that reload with identical logits."""
import json

import torch
from transformers import AutoModelForCausalLM

from layerpuzzle.models import architecture as arch
from layerpuzzle.models.checkpoint import layers_to_remove, save_pruned
from layerpuzzle.models.random_models import build_random_model
from layerpuzzle.provenance import sha256_path


def test_save_pruned_round_trip(tmp_path):
    model, tok = build_random_model("qwen2", seed=5)
    dense_cfg = model.config.to_dict()
    arch.drop_layers(model, [2, 5])
    out = save_pruned(model, tok, tmp_path / "ckpt", dense_config=dense_cfg, base_model="random-qwen2",
                      method="Reverse", variant="", params={"k": 1}, target_fraction=0.25,
                      layer_groups=[[0], [1], [3], [4], [6], [7]], summary="test")
    again = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again(ids).logits, model(ids).logits, rtol=0, atol=0)
    assert again.config.num_hidden_layers == 6 and len(again.config.layer_types) == 6
    rec = json.loads((out / "pruning.json").read_text())
    assert rec["removed_layers"] == 2 and rec["target_pct"] == 25
    assert json.loads((out / "layer_map.json").read_text())[2] == {"student": 2, "teacher_layers": [3], "teacher_last": 3}
    assert (out / "README.md").read_text().startswith("# random-qwen2")
    assert not list(tmp_path.glob(".ckpt.tmp-*"))  # the temporary directory was renamed away
    assert len(sha256_path(out)) == 64


def test_layers_to_remove_follows_table3_rule():
    model, _ = build_random_model("llama")
    # 8 layers of 36,992 params in 329,152 total: 11.24 % per layer; nearest to 10/20/30 %: 1/2/3 layers
    assert [layers_to_remove(model.config, t) for t in (0.1, 0.2, 0.3)] == [1, 2, 3]
