"""Checkpoints of uneven layer widths: save, reload through load_model bit-identically, strict loading."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from layerpuzzle.methods.llm_pruner import prune_width
from layerpuzzle.models import uneven
from layerpuzzle.models.random_models import build_random_model
from layerpuzzle.models.sources import load_model
from layerpuzzle.models.width import keep_mlp_channels

from workflow_utils import REPO

GQA = dict(num_attention_heads=8, num_key_value_heads=4)


def calib():
    return torch.randint(0, 256, (3, 16), generator=torch.Generator().manual_seed(0))


def probe():
    return torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(7))


def pruned(arch_name="llama", seed=4):
    model, tok = build_random_model(arch_name, seed=seed, **GQA)
    model, rec = prune_width(model, calib(), ratio=0.5, layers=(2, 6))
    return model, tok, rec


@pytest.fixture(scope="module", params=["llama", "qwen3"])  # qwen3: tied embeddings, q/k norms
def saved(request, tmp_path_factory):
    model, tok, rec = pruned(request.param)
    out = uneven.save_uneven(model, tok, tmp_path_factory.mktemp(request.param) / "ckpt", record=rec,
                             title="tiny — LLM-Pruner", summary="test", params={"ratio": 0.5})
    return model, rec, out


def test_reload_through_load_model_is_bit_identical(saved):
    model, rec, out = saved
    again, tok = load_model(out)
    assert again.training is False and tok.pad_token is not None
    with torch.no_grad():
        torch.testing.assert_close(again(probe()).logits, model(probe()).logits, rtol=0, atol=0)
    sd, sd2 = model.state_dict(), again.state_dict()
    assert sorted(sd) == sorted(sd2) and all(torch.equal(sd[k], sd2[k]) for k in sd)
    if model.config.tie_word_embeddings:
        assert again.lm_head.weight is again.model.embed_tokens.weight
    widths = [(a.self_attn.q_proj.out_features, a.mlp.gate_proj.out_features) for a in again.model.layers]
    assert widths == [(128, 128)] * 2 + [(64, 64)] * 4 + [(128, 128)] * 2


def test_directory_holds_the_unpruned_config_the_record_and_a_card(saved):
    _, rec, out = saved
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["intermediate_size"] == 128 and cfg["num_key_value_heads"] == 4 and cfg["num_hidden_layers"] == 8
    record = json.loads((out / "uneven_layers.json").read_text())
    assert record["format"] == "layerpuzzle-uneven/1" and record["kind"] == "width_pruned"
    assert record["layers"] == rec["layers"] and record["pruning_seconds"] == rec["pruning_seconds"]
    card = (out / "README.md").read_text()
    assert "**cannot** load this checkpoint" in card and "load_model(" in card and "uneven_layers.json" in card
    assert uneven.is_uneven(out) and not list(out.parent.glob(".ckpt.tmp-*"))


def test_plain_from_pretrained_cannot_load_it(saved):
    _, _, out = saved
    with pytest.raises(Exception):
        AutoModelForCausalLM.from_pretrained(out)


def test_strict_load_rejects_a_missing_an_unexpected_and_a_misshapen_tensor(tmp_path):
    model, tok, rec = pruned()
    out = uneven.save_uneven(model, tok, tmp_path / "ckpt", record=rec)
    weights = out / "model.safetensors"
    good = load_file(str(weights))

    missing = dict(good)
    del missing["model.layers.3.mlp.down_proj.weight"]
    save_file(missing, str(weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"strict load failed: missing \['model.layers.3.mlp.down_proj.weight'\]"):
        load_model(out)

    save_file({**good, "model.layers.3.extra": torch.zeros(2)}, str(weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"unexpected \['model.layers.3.extra'\]"):
        load_model(out)

    save_file(good, str(weights), metadata={"format": "pt"})
    record = json.loads((out / "uneven_layers.json").read_text())
    record["layers"][3]["intermediate_size"] = 96
    (out / "uneven_layers.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"shape mismatch \['model.layers.3.mlp.down_proj.weight"):
        load_model(out)


def test_a_record_that_does_not_match_the_model_is_refused_before_writing(tmp_path):
    model, tok, rec = pruned()
    bad = {**rec, "layers": [dict(w) for w in rec["layers"]]}
    bad["layers"][2]["intermediate_size"] = 100
    with pytest.raises(ValueError, match="does not rebuild the model's shapes"):
        uneven.save_uneven(model, tok, tmp_path / "ckpt", record=bad)
    assert not (tmp_path / "ckpt").exists()
    with pytest.raises(ValueError, match="kind 'nope' has no rebuilder; allowed: .*width_pruned"):
        uneven.save_uneven(model, tok, tmp_path / "ckpt", record={**rec, "kind": "nope"})


def test_unavailable_and_registered_kinds(tmp_path, monkeypatch):
    monkeypatch.setitem(uneven.REBUILDER_MODULES, "test_gone", "layerpuzzle.methods.no_such_module")
    with pytest.raises(ValueError, match="kind 'test_gone': its rebuilder module 'layerpuzzle.methods.no_such_module'"):
        uneven.rebuilder("test_gone")
    from layerpuzzle.methods.slicegpt.rebuild import rebuild_sliced
    assert uneven.rebuilder("sliced") is rebuild_sliced  # SliceGPT's kind, found through REBUILDER_MODULES

    # a kind of one's own: every MLP keeps its first `keep` channels
    def rebuild(model, record):
        for layer in model.model.layers:
            keep_mlp_channels(layer, range(record["keep"]))

    uneven.register_rebuilder("test_half_mlp", rebuild)
    model, tok = build_random_model("qwen2", seed=1)
    for layer in model.model.layers:
        keep_mlp_channels(layer, range(32))
    out = uneven.save_uneven(model, tok, tmp_path / "ckpt", record={"kind": "test_half_mlp", "layers": [], "keep": 32})
    again, _ = load_model(out)
    torch.testing.assert_close(again(probe()).logits, model(probe()).logits, rtol=0, atol=0)


def test_a_fresh_process_loads_it_without_importing_the_method(tmp_path):
    """The width_pruned rebuilder is found by kind alone (lazy import), as in an evaluation job."""
    model, tok, rec = pruned()
    out = uneven.save_uneven(model, tok, tmp_path / "ckpt", record=rec)
    with torch.no_grad():
        expected = model(probe()).logits[0, -1, :5].tolist()
    code = ("import sys, json, torch\n"
            "from layerpuzzle.models.sources import load_model\n"
            f"m, _ = load_model({str(out)!r})\n"
            "x = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(7))\n"
            "print(json.dumps(m(x).logits[0, -1, :5].tolist()))\n"
            "print('methods imported:', any(k.startswith('layerpuzzle.methods') for k in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    lines = res.stdout.strip().splitlines()
    assert json.loads(lines[-2]) == expected and lines[-1] == "methods imported: False"
