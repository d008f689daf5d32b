"""LaCo: the RDSC merge (described and released), the similarity criterion, the search loop."""
import copy

import pytest
import torch

from layerpuzzle.methods.laco import PROJECTIONS, CollapseParams, layer_collapse, rdsc_merge
from layerpuzzle.methods.laco.collapse import next_threshold
from layerpuzzle.methods.laco.similarity import SentenceProbe, flat_cosine
from layerpuzzle.models.random_models import build_random_model

SENTENCES = ["Mouron () is a commune in the Arde", "Torreorgaz is a municipality in the"]
NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight")


def _w(layer, name):
    return layer.get_submodule(name).weight.detach()


@pytest.mark.parametrize("arch_name", ["llama", "qwen2", "qwen3"])
def test_described_merge_is_eq1_on_projections_and_biases(arch_name):
    model, _ = build_random_model(arch_name, seed=1)
    l2, l3, l4 = (model.model.layers[i] for i in (2, 3, 4))
    merged = rdsc_merge([l2, l3, l4], "described")
    for name in PROJECTIONS:
        expected = _w(l3, name) + _w(l4, name) - _w(l2, name)  # θ_2 + (θ_3 − θ_2) + (θ_4 − θ_2)
        torch.testing.assert_close(_w(merged, name), expected, rtol=0, atol=1e-6)
        b = merged.get_submodule(name).bias
        if b is not None:  # qwen2 q/k/v
            torch.testing.assert_close(b, l3.get_submodule(name).bias + l4.get_submodule(name).bias
                                       - l2.get_submodule(name).bias, rtol=0, atol=1e-6)
    base_state = l2.state_dict()
    for key, value in merged.state_dict().items():
        if "norm" in key:  # input/post-attention norms and qwen3 q/k norms stay the base layer's
            assert torch.equal(value, base_state[key]), key
    assert torch.equal(_w(l2, "mlp.up_proj"), model.model.layers[2].mlp.up_proj.weight)  # inputs untouched


def test_released_merge_copies_the_last_layers_projections_and_keeps_own_norms_and_biases():
    model, _ = build_random_model("qwen2", seed=2)
    group = [model.model.layers[i] for i in (1, 2, 3, 4)]
    merged = rdsc_merge(group, "released")
    for name in PROJECTIONS:
        assert torch.equal(_w(merged, name), _w(group[-1], name))
        b = merged.get_submodule(name).bias
        if b is not None:
            assert torch.equal(b, group[0].get_submodule(name).bias)
    for name in NORMS:
        assert torch.equal(merged.get_parameter(name), group[0].get_parameter(name))
        assert not torch.equal(merged.get_parameter(name), group[-1].get_parameter(name))


def test_released_merge_equals_the_notebooks_in_place_update_loop():
    """merge_layers_return_model: W_base.add_(W_diff − W_base_updated) for diff = base+1..base+m."""
    model, _ = build_random_model("llama", seed=3)
    base = copy.deepcopy(model.model.layers[2])
    with torch.no_grad():
        for diff in (3, 4, 5):
            for name in PROJECTIONS:
                w = base.get_submodule(name).weight
                w.add_(model.model.layers[diff].get_submodule(name).weight - w)
    merged = rdsc_merge([model.model.layers[i] for i in (2, 3, 4, 5)], "released")
    for name in PROJECTIONS:
        torch.testing.assert_close(_w(merged, name), _w(base, name), rtol=0, atol=1e-6)


def test_probe_reference_is_the_hf_final_norm_hidden_state_and_similarity_is_flat_cosine():
    model, tok = build_random_model("llama", seed=0)
    probe = SentenceProbe(model, tok, SENTENCES)
    stack = [(layer, i) for i, layer in enumerate(model.model.layers)]
    ref = probe.outputs(stack)
    assert ref[0].shape != ref[1].shape  # different lengths, batched with right padding
    for s, out in zip(SENTENCES, ref):
        ids = tok(s, return_tensors="pt").input_ids
        with torch.no_grad():
            hf = model(ids, output_hidden_states=True).hidden_states[-1][0]  # batch 1, no padding
        torch.testing.assert_close(out, hf, rtol=0, atol=1e-5)
    assert probe.similarity(ref, ref) == pytest.approx(1.0, abs=1e-12)
    dropped = probe.outputs(stack[:3] + stack[4:])
    expected = sum(flat_cosine(a, b) for a, b in zip(ref, dropped)) / 2
    a, b = ref[0].flatten().double(), dropped[0].flatten().double()
    assert flat_cosine(ref[0], dropped[0]) == pytest.approx(float(a @ b / (a.norm() * b.norm())), rel=1e-12)
    assert probe.similarity(ref, dropped) == pytest.approx(expected, rel=1e-12)
    # resuming from the cached inputs of layer 5 gives the same outputs
    inputs = probe.layer_inputs(stack)
    resumed = probe.outputs(stack, start=5, inputs=inputs)
    for x, y in zip(ref, resumed):
        assert torch.equal(x, y)


def test_accept_all_search_walks_the_notebook_loop():
    """T below any cosine: lay = 8−3 = 5 → merge 5..7; lay 3 → 3..5; lay 1 → 1..3; lay −1 stops."""
    model, tok = build_random_model("llama", seed=0)
    res = layer_collapse(model, tok, SENTENCES, CollapseParams(merge_layers=3, lowest_layer=1, interval=2,
                                                               threshold=-2.0, stop_at_target=False))
    assert [c["base"] for c in res.candidates] == [5, 3, 1]
    assert res.groups == [[0], [1, 2, 3, 4, 5, 6, 7]]
    assert res.removed == 6 and model.config.num_hidden_layers == 2
    assert [l.self_attn.layer_idx for l in model.model.layers] == [0, 1]


def test_stop_at_target_lands_exactly_and_installs_the_accepted_candidate():
    model, tok = build_random_model("llama", seed=0)
    dense = copy.deepcopy(model)
    res = layer_collapse(model, tok, SENTENCES, CollapseParams(merge_layers=3, threshold=-2.0), target_removed=3)
    # first merge collapses 5..7 (2 removed), the second only 3..4 (1 more)
    assert res.groups == [[0], [1], [2], [3, 4], [5, 6, 7]] and res.removed == 3 and res.shortfall == 0
    last = [c for c in res.candidates if c["accepted"]][-1]
    probe = SentenceProbe(dense, tok, SENTENCES)
    with torch.no_grad():
        installed = [model(tok(s, return_tensors="pt").input_ids, output_hidden_states=True).hidden_states[-1][0]
                     for s in SENTENCES]
    sim = probe.similarity(probe.outputs([(l, i) for i, l in enumerate(dense.model.layers)]), installed)
    assert sim == pytest.approx(last["similarity"], abs=1e-6)


def test_threshold_is_lowered_until_the_target_is_reached():
    model, tok = build_random_model("llama", seed=0)
    res = layer_collapse(model, tok, SENTENCES, CollapseParams(merge_layers=3, threshold=1.5, threshold_step=0.05),
                         target_removed=2)
    first_pass = [c for c in res.candidates if c["pass"] == 1]
    assert not any(c["accepted"] for c in first_pass)
    best = max(c["similarity"] for c in first_pass)
    assert res.passes >= 2 and res.removed == 2 and res.shortfall == 0
    assert res.threshold_used < best
    assert res.candidates[-1]["accepted"]


def test_next_threshold_skips_steps_that_cannot_change_the_pass():
    assert next_threshold(0.65, 0.52, 0.05) == pytest.approx(0.50)  # 0.60 and 0.55 would reject 0.52 again
    assert next_threshold(0.65, 0.6499, 0.05) == pytest.approx(0.60)
    assert next_threshold(0.65, 0.60, 0.05) == pytest.approx(0.55)  # accept needs sim > T


# ---------------------------------------------------------------- released-code fidelity (the notebook, written out)
def _notebook_merge(model, base, m):
    """merge_layers_return_model: deepcopy, W_base.add_(W_diff − W_base) for diff = base+1..base+m, delete them."""
    m = min(m, len(model.model.layers) - base - 1)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for diff in range(base + 1, base + m + 1):
            for name in PROJECTIONS:
                w = out.model.layers[base].get_submodule(name).weight
                w.add_(model.model.layers[diff].get_submodule(name).weight - w)
    for diff in range(base + m, base, -1):
        del out.model.layers[diff]
    out.config.num_hidden_layers = len(out.model.layers)
    if getattr(out.config, "layer_types", None) is not None:
        out.config.layer_types = out.config.layer_types[: len(out.model.layers)]
    return out


def _notebook_sim(original, candidate, tok, sentences):
    """cal_last_hidden_sim: per sentence (batch 1), cosine of the flattened hidden_states[-1]; mean."""
    sims = []
    with torch.no_grad():
        for s in sentences:
            ids = tok(s, return_tensors="pt").input_ids
            a = original(ids, output_hidden_states=True, use_cache=False).hidden_states[-1].flatten()
            b = candidate(ids, output_hidden_states=True, use_cache=False).hidden_states[-1].flatten()
            sims.append(float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
    return sum(sims) / len(sims)


def _notebook_laco(model, tok, sentences, *, C, L, H, I, T):
    """The notebook's while loop in fp32 with LOWEST_LAY = L − 1, HIGHEST_LAY = H − 1 and no target."""
    original = copy.deepcopy(model).float()
    current, lay, sims = original, (H - 1) - C, []
    while lay >= L - 1:
        tmp = _notebook_merge(current, lay, C - 1)
        sim = _notebook_sim(original, tmp, tok, sentences)
        sims.append((lay, sim))
        if sim > T:
            current = tmp
            lay -= I
            if lay >= len(current.model.layers):
                lay = len(current.model.layers) - 1 - C
        else:
            lay -= 1
    return current, sims


NOTEBOOK_SEARCH = {"merge_layers": 3, "lowest_layer": 1, "highest_layer": None, "interval": 2, "threshold": 0.6,
                   "stop_at_target": True, "threshold_step": 0.05}
RELEASED = {"variant": "released", "layer_bounds": "one_based", "stop_at_target": False, "search_dtype": "float32"}


def _laco_run(tmp_path, model, tok, variant, dtype):
    from safetensors.torch import load_file

    from layerpuzzle.methods.laco.pipeline import run_laco

    src, out = tmp_path / "dense", tmp_path / "out"
    if not src.exists():
        model.save_pretrained(src)
        tok.save_pretrained(src)
    if out.exists():
        import shutil
        shutil.rmtree(out)
    run_laco(str(src), str(out), model_name="m", target_fraction=0.25, variant=variant, search=dict(NOTEBOOK_SEARCH),
             sentences=SENTENCES, dtype=dtype, device="cpu")
    import json
    return json.loads((out / "laco.json").read_text()), load_file(str(out / "model.safetensors"))


def test_released_switches_reproduce_the_notebook_loop_in_fp32(tmp_path):
    """layer_bounds one_based + stop_at_target false + search_dtype float32 on a bf16 run = the notebook, written out
    independently (fp32 deepcopies, batch-1 HF forwards, LOWEST_LAY = L − 1, HIGHEST_LAY = H − 1, no target)."""
    model, tok = build_random_model("llama", seed=0)
    expected, sims = _notebook_laco(model, tok, SENTENCES, C=3, L=1, H=8, I=2, T=0.6)
    record, weights = _laco_run(tmp_path, model, tok, RELEASED, dtype="bfloat16")
    assert [c["base"] for c in record["candidates"]] == [lay for lay, _ in sims] == [4, 3, 1, 0]
    for c, (_, s) in zip(record["candidates"], sims):
        assert c["similarity"] == pytest.approx(s, abs=2e-6)  # fp32 forwards, not bf16
    assert [c["accepted"] for c in record["candidates"]] == [s > 0.6 for _, s in sims] == [False, True, False, False]
    assert record["groups"] == [[0], [1], [2], [3, 4, 5], [6], [7]]  # layer 7 is never in a group (H − 1 = 7)
    assert record["removed"] == 2 and record["passes"] == 1
    state = expected.state_dict()
    assert all(w.dtype == torch.bfloat16 for w in weights.values())  # saved in the configured dtype
    for key, w in weights.items():  # the notebook's in-place add leaves fp32 rounding, below bf16's resolution
        torch.testing.assert_close(w.float(), state[key], rtol=2 ** -8, atol=1e-6, msg=key)


def test_laco_defaults_keep_the_literal_bounds_the_target_and_the_model_dtype(tmp_path):
    """Without the switches: H − C = 5 is the first base, the search stops at the target and scores in bf16."""
    model, tok = build_random_model("llama", seed=0)
    _, sims = _notebook_laco(model, tok, SENTENCES, C=3, L=1, H=8, I=2, T=0.6)
    record, _ = _laco_run(tmp_path, model, tok, {"variant": "released"}, dtype="bfloat16")
    assert record["candidates"][0]["base"] == 5 and record["removed"] == record["target_removed"] == 2
    bf16, _ = _laco_run(tmp_path, model, tok, {**RELEASED, "search_dtype": "model"}, dtype="bfloat16")
    diffs = [abs(c["similarity"] - s) for c, (_, s) in zip(bf16["candidates"], sims)]
    assert max(diffs) > 1e-4  # bf16 forwards move the similarities: the switch matters


def test_one_based_bounds_need_l_at_least_one():
    with pytest.raises(ValueError, match="lowest_layer .*one_based.*got 0"):
        CollapseParams(lowest_layer=0, layer_bounds="one_based")
    with pytest.raises(ValueError, match="layer_bounds 'zero'; allowed: literal, one_based"):
        CollapseParams(layer_bounds="zero")
    assert CollapseParams(lowest_layer=1, highest_layer=40, layer_bounds="one_based").notebook_bounds(40) == (0, 39)
    assert CollapseParams(lowest_layer=1, highest_layer=None).notebook_bounds(32) == (1, 32)
