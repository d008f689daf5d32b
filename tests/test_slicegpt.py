"""SliceGPT (layerpuzzle.methods.slicegpt) on tiny random models: invariance, budget, checkpoint, bad input."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from layerpuzzle.data.calibration import CalibrationSpec, build_calibration
from layerpuzzle.data.text_sources import calibration_rows
from layerpuzzle.methods.slicegpt import (SlicedDecoderLayer, SliceSettings, fold_rmsnorms, param_sparsity,
                                          rotate_and_slice, save_sliced, slice_model, sliced_params,
                                          untie_embeddings, width_for_slicing, width_for_target)
from layerpuzzle.models.architecture import count_parameters, layers
from layerpuzzle.models.random_models import build_random_model
from layerpuzzle.models.sources import load_model
from layerpuzzle.models.uneven import RECORD_FILE, load_uneven
from layerpuzzle.sparsity import ArchSpec, total_params

# (arch, overrides): LLaMA with full multi-head attention, GQA (n_kv = 2 of 4 heads) with q/k/v biases,
# Qwen3 (q/k norms, tied embeddings), Mistral (GQA)
MODELS = {
    "llama-mha": ("llama", {"num_key_value_heads": 4}),
    "qwen2-gqa": ("qwen2", {}),
    "qwen3": ("qwen3", {}),
    "mistral-gqa": ("mistral", {}),
}


@pytest.fixture(scope="module")
def windows(mirror):
    rows, _ = calibration_rows("wikitext2", mirror)
    tok = build_random_model("llama")[1]
    w, _ = build_calibration(rows, tok, CalibrationSpec("wikitext2", 8, 0, 64))
    return w[:12]


@pytest.fixture(scope="module")
def probe():
    return torch.randint(0, 256, (3, 40), generator=torch.Generator().manual_seed(7))


def _model(name):
    arch, overrides = MODELS[name]
    return build_random_model(arch, seed=3, **overrides)[0]


def _tokenizer():
    return build_random_model("llama")[1]


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


# ---------------------------------------------------------------- invariance at s = 0


@pytest.mark.parametrize("name", ["llama-mha", "qwen2-gqa", "qwen3", "mistral-gqa"])
def test_rotation_without_slicing_keeps_logits(name, windows, probe):
    model = _model(name)
    dense = _logits(model, probe)
    emb_before = model.get_input_embeddings().weight.detach().to(torch.float64).clone()
    rotate_and_slice(model, windows, model.config.hidden_size, final_orientation="pca")
    assert _rel(_logits(model, probe), dense) <= 1e-4
    # the embedding was rotated by Q_0: recover it (E has full column rank) and check Qᵀ Q = I
    Q0 = torch.linalg.lstsq(emb_before, model.get_input_embeddings().weight.detach().to(torch.float64)).solution
    eye = torch.eye(Q0.shape[0], dtype=torch.float64)
    assert (Q0.T @ Q0 - eye).abs().max().item() <= 1e-5
    # every shortcut is Q_inᵀ Q_out of two orthogonal bases: orthogonal itself
    for layer in layers(model):
        assert isinstance(layer, SlicedDecoderLayer)
        for S in (layer.attn_shortcut_Q, layer.mlp_shortcut_Q):
            S = S.detach().to(torch.float64)
            assert (S.T @ S - eye).abs().max().item() <= 1e-5
    # the rotation is not the identity (the test would pass vacuously otherwise)
    assert (Q0 - eye).abs().max().item() > 0.1


def test_random_final_orientation_keeps_logits(windows, probe):
    model = _model("qwen3")
    dense = _logits(model, probe)
    rotate_and_slice(model, windows, model.config.hidden_size, final_orientation="random", seed=5)
    assert _rel(_logits(model, probe), dense) <= 1e-4


@pytest.mark.parametrize("name", ["llama-mha", "qwen3"])
def test_norm_folding_alone_keeps_logits(name, probe):
    model = _model(name)
    dense = _logits(model, probe)
    tied = untie_embeddings(model)
    assert tied == (name == "qwen3")
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    fold_rmsnorms(model)
    assert _rel(_logits(model, probe), dense) <= 1e-5
    for layer in layers(model):
        assert torch.all(layer.input_layernorm.weight == 1) and torch.all(layer.post_attention_layernorm.weight == 1)
    assert torch.all(model.model.norm.weight == 1)


def test_folding_a_tied_head_is_refused():
    model = _model("qwen3")
    with pytest.raises(ValueError, match="untied lm_head"):
        fold_rmsnorms(model)


@pytest.mark.parametrize("orientation", ["pca", "random"])
def test_slicing_a_low_rank_stream_is_exact(orientation, windows, probe):
    """If the residual stream lives in an r-dim subspace, slicing to d' >= r must keep the logits: this needs
    the PCA order (largest first), the shortcuts and the norm over the unsliced width all right."""
    model = _model("llama-mha")
    d, r = model.config.hidden_size, 40
    U = torch.linalg.qr(torch.randn(d, r, generator=torch.Generator().manual_seed(1)))[0]
    P = U @ U.T
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(model.model.embed_tokens.weight @ P)
        for layer in layers(model):
            layer.self_attn.o_proj.weight.copy_(P @ layer.self_attn.o_proj.weight)
            layer.mlp.down_proj.weight.copy_(P @ layer.mlp.down_proj.weight)
    dense = _logits(model, probe)
    rotate_and_slice(model, windows, 48, final_orientation=orientation, seed=2)
    assert layers(model)[0].attn_shortcut_Q.shape == (48, 48)
    assert _rel(_logits(model, probe), dense) <= 1e-4


def test_sliced_generation_uses_the_cache_correctly(windows, probe):
    model = _model("mistral-gqa")
    slice_model(model, windows, SliceSettings(slicing=0.25))
    prompt = probe[:1, :8]
    out = model.generate(prompt, max_new_tokens=6, do_sample=False)
    ids = prompt
    for _ in range(6):  # greedy without cache
        nxt = _logits(model, ids)[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    assert torch.equal(out, ids)


# ---------------------------------------------------------------- budget


def test_budget_formula_by_hand():
    spec = ArchSpec.from_hf_config(_model("llama-mha").config)  # d 64, 4 heads × 16, d_ff 128, V 259, L 8
    k = 48
    layer = k * 64 * 3 + 64 * k + 3 * 128 * k + 2 * k * k  # q,k,v (kv = 4 heads) + o + mlp + two shortcuts
    last_extra = (128 + k) * (64 - k)  # last down_proj and mlp shortcut reach d = 64
    assert sliced_params(spec, k, 64) == 259 * (k + 64) + 8 * layer + last_extra
    assert sliced_params(spec, k, k) == 259 * 2 * k + 8 * layer


@pytest.mark.parametrize("name,target,rule,slice_head", [
    ("llama-mha", 0.2, "at_most", False),
    ("qwen2-gqa", 0.2, "at_least", False),
    ("qwen3", 0.1, "at_most", False),
    ("mistral-gqa", 0.3, "nearest", True),
])
def test_parameter_count_and_target(name, target, rule, slice_head, windows):
    model = _model(name)
    spec = ArchSpec.from_hf_config(model.config)
    dense = count_parameters(model)
    assert dense == total_params(spec)
    result = slice_model(model, windows, SliceSettings(target=target, target_rule=rule, slice_head=slice_head,
                                                       round_interval=8, batch_size=4))
    k = result.width
    head = k if slice_head else spec.hidden_size
    assert k % 8 == 0 and result.lm_head_input == head
    assert count_parameters(model) == sliced_params(spec, k, head) == result.params_sliced
    assert result.param_sparsity == pytest.approx(1 - count_parameters(model) / dense, abs=0)
    assert result.slicing == 1 - k / spec.hidden_size
    assert result.pruning_seconds > 0
    # tied models: the untied lm_head and the embedding are both counted
    assert model.lm_head.weight.shape == (spec.vocab_size, head)
    assert model.model.embed_tokens.weight.shape == (spec.vocab_size, k)
    # the solved width meets the target by its rule, and the neighbour on the grid would not do better
    sp = result.param_sparsity
    narrower, wider = param_sparsity(spec, k - 8, slice_head), param_sparsity(spec, k + 8, slice_head) \
        if k + 8 <= spec.hidden_size else -1.0
    if rule == "at_most":
        assert sp <= target < narrower
    elif rule == "at_least":
        assert wider < target <= sp
    else:
        assert abs(sp - target) <= min(abs(narrower - target), abs(wider - target))


def test_width_for_slicing_rounds_down_like_the_reference():
    assert width_for_slicing(576, 0.25) == 432
    assert width_for_slicing(576, 0.30) == 400  # int(403.2) = 403 -> 400
    assert width_for_slicing(64, 0.2) == 48  # int(51.2) = 51 -> 48


# ---------------------------------------------------------------- checkpoint


def test_checkpoint_reloads_bit_identically(windows, probe, tmp_path):
    model = _model("qwen3")
    result = slice_model(model, windows, SliceSettings(slicing=0.25, batch_size=4))
    out = save_sliced(model, _tokenizer(), tmp_path / "ckpt", result.record,
                      extra_json={"pruning.json": result.summary()})
    config = json.loads((out / "config.json").read_text())
    record = json.loads((out / RECORD_FILE).read_text())
    assert config["tie_word_embeddings"] is False and config["hidden_size"] == 64
    assert record["kind"] == "sliced" and record["format"] == "layerpuzzle-uneven/1"
    assert record["embedding_dim"] == 48 and len(record["layers"]) == 8

    card = (out / "README.md").read_text()
    assert "SliceGPT" in card and "**cannot** load this checkpoint" in card and "load_model(" in card
    loaded, tok = load_model(out)  # sees uneven_layers.json: load_uneven, rebuilder found by kind
    assert tok.pad_token is not None and not loaded.training
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(_logits(model, probe), _logits(loaded, probe))
    assert loaded.lm_head.weight.data_ptr() != loaded.model.embed_tokens.weight.data_ptr()

    # a missing shortcut matrix makes the strict load fail
    state = load_file(str(out / "model.safetensors"))
    del state["model.layers.3.mlp_shortcut_Q"]
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"strict load failed: missing \['model.layers.3.mlp_shortcut_Q'\]"):
        load_uneven(out, "float32", "cpu")


def test_rebuild_rejects_inconsistent_record(windows, tmp_path):
    model = _model("llama-mha")
    result = slice_model(model, windows, SliceSettings(slicing=0.25, batch_size=4))
    out = save_sliced(model, _tokenizer(), tmp_path / "ckpt", result.record)
    record = json.loads((out / RECORD_FILE).read_text())
    record["layers"][2]["attn_input"] = 40
    (out / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(ValueError, match="layer 2 attn_input 40"):
        load_uneven(out, "float32", "cpu")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("key,value", [("slicing", 0), ("slicing", 1.0), ("slicing", -0.2), ("target", 0.0),
                                       ("target", 1.5), ("target", "0.3"), ("slicing", True)])
def test_fraction_outside_open_unit_interval_is_rejected(key, value):
    with pytest.raises(ValueError) as err:
        SliceSettings(**{key: value})
    msg = str(err.value)
    assert f"'{key}'" in msg and repr(value) in msg and "(0, 1)" in msg


def test_other_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="exactly one of 'slicing' and 'target'"):
        SliceSettings(slicing=0.2, target=0.2)
    with pytest.raises(ValueError, match="exactly one of 'slicing' and 'target'"):
        SliceSettings()
    with pytest.raises(ValueError, match="'final_orientation' = 'svd'.*allowed: pca, random"):
        SliceSettings(slicing=0.2, final_orientation="svd")
    with pytest.raises(ValueError, match="'target_rule' = 'up'"):
        SliceSettings(target=0.2, target_rule="up")
    with pytest.raises(ValueError, match=r"unknown SliceGPT keys \['sparsity'\]"):
        SliceSettings.from_dict({"sparsity": 0.25})


def test_unreachable_target_is_rejected():
    spec = ArchSpec.from_hf_config(_model("llama-mha").config)
    with pytest.raises(ValueError, match=r"'target' = 0.99 cannot be met with rule 'at_least'.*allowed: a target"):
        width_for_target(spec, 0.99, rule="at_least")
