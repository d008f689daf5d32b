"""CoMe's progressive loop (docs/methods/come.md, Alg. 1) against a hand re-implementation, and its invariants."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from layerpuzzle.methods.come.artifacts import save_merge_checkpoint
from layerpuzzle.methods.come.concat_merge import merge_window
from layerpuzzle.methods.come.layer_groups import (
    check_partition,
    distillation_pairs,
    initial_groups,
    merge_groups,
    n_leaves,
    touches_merged,
)
from layerpuzzle.methods.come.progressive import (
    ComeSettings,
    Execution,
    blocked_sbi,
    choose_window,
    come,
)
from layerpuzzle.models.random_models import build_random_model


def calib_ids(seed=0, windows=5, seq_len=24):
    return torch.randint(0, 256, (windows, seq_len), generator=torch.Generator().manual_seed(seed))


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- layer map
def test_layer_groups_hand_example():
    g = initial_groups(6)
    g = merge_groups(g, 2, 3)  # [[0],[1],[2,3],[4],[5]]
    assert g == [[0], [1], [2, 3], [4], [5]]
    assert n_leaves(g, 1, 2) == 3 and touches_merged(g, 1, 2) and not touches_merged(g, 3, 4)
    g = merge_groups(g, 1, 2)
    assert g == [[0], [1, 2, 3], [4], [5]]
    g = merge_groups(g, 2, 3)
    assert g == [[0], [1, 2, 3], [4, 5]]
    assert distillation_pairs(g) == [{"student": 1, "teacher": 3}, {"student": 2, "teacher": 5}]
    check_partition(g, 6)
    with pytest.raises(ValueError):
        check_partition([[0], [2, 1]], 3)
    with pytest.raises(ValueError):
        merge_groups(g, 2, 2)


def test_blocked_sbi_and_argmin_first_tie():
    groups = [[0], [1, 2], [3], [4]]
    sbi = blocked_sbi([0.3, 0.1, 0.1, 0.2], groups, 1, "forbidden")
    assert sbi.tolist() == [math.inf, math.inf, 0.1, 0.2]  # windows 0..1 and 1..2 touch the merged layer 1
    assert choose_window([0.3, 0.1, 0.1, 0.2]) == 1  # first of the tied minima
    assert choose_window(blocked_sbi([0.3, float("nan"), 0.2], groups[:3], 1, "allowed")) == 2
    with pytest.raises(ValueError, match="no mergeable window"):
        choose_window([math.inf, math.inf])


# --------------------------------------------------------------------------- hand re-implementation
@torch.no_grad()
def hand_scores(model, ids):
    """HF forward: hidden states (last one after the final norm) and E_t|x| at down_proj / o_proj inputs."""
    acts = {}
    hooks = []
    for l, layer in enumerate(model.model.layers):
        for name, mod in (("down", layer.mlp.down_proj), ("o", layer.self_attn.o_proj)):
            hooks.append(mod.register_forward_pre_hook(
                lambda m, a, key=(l, name): acts.__setitem__(key, a[0].abs().reshape(-1, a[0].shape[-1]).mean(0))))
    hs = model(ids, output_hidden_states=True).hidden_states
    for h in hooks:
        h.remove()
    return hs, acts


def hand_iteration(model, ids, p, rho):
    """One Alg. 1 iteration by hand (2-layer windows, cosine BI/SBI, Eq. 3 ratios with ρ, Eq. 4 sensitivity)."""
    hs, acts = hand_scores(model, ids)
    L = len(model.model.layers)
    cos = lambda a, b: F.cosine_similarity(a, b, dim=-1).mean().item()
    bi = np.array([1 - cos(hs[l], hs[l + 1]) for l in range(L)])
    sbi = np.array([1 - cos(hs[l], hs[l + 2]) for l in range(L - 1)])
    l = int(np.argmin(sbi))
    b = bi[l:l + 2] / bi[l:l + 2].sum()
    r = b ** p / (b ** p).sum()
    if r.max() < rho:
        top = int(np.argmax(r))
        r = np.array([rho if t == top else (1 - rho) for t in range(2)])  # 2 layers: the other gets 1 - ρ
    cfg = model.config
    n_kv = cfg.num_key_value_heads
    ffn, kv = [], []
    for t in (l, l + 1):
        layer = model.model.layers[t]
        ffn.append(acts[(t, "down")] * layer.mlp.down_proj.weight.abs().sum(0))
        kv.append((acts[(t, "o")] * layer.self_attn.o_proj.weight.abs().sum(0)).view(n_kv, -1).mean(1))
    merge_window(model, l, l + 1, r.tolist(), ffn, kv)
    return l, r, bi, sbi


@pytest.mark.parametrize("arch,p,rho", [("llama", 1.0, 0.0), ("qwen2", 2.0, 0.6)])
def test_two_iterations_equal_hand_reimplementation(arch, p, rho):
    model, _ = build_random_model(arch, seed=4)
    ids = calib_ids(1)
    hand = copy.deepcopy(model)
    settings = ComeSettings(p=p, rho=rho, last_layer_output="final_norm")
    result = come(model, ids, 2, settings, Execution(batch_size=2))
    assert len(result.iterations) == 2
    for it in result.iterations:
        l, r, bi, sbi = hand_iteration(hand, ids, p, rho)
        assert (it.window_start, it.window_stop) == (l, l + 1)
        assert it.bi == pytest.approx(bi.tolist(), abs=1e-5)
        assert it.sbi == pytest.approx(sbi.tolist(), abs=1e-5)
        assert it.ratios == pytest.approx(r.tolist(), abs=1e-5)
        if rho > 0:
            assert max(it.ratios) >= rho - 1e-12
    ours, ref = state(model), state(hand)
    assert ours.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(ours[k], ref[k], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- incremental == full
@pytest.mark.parametrize("arch,settings,cache_every", [
    ("llama", ComeSettings(), 1),
    ("qwen3", ComeSettings(layers_per_merge=3, sbi_estimator="released", qk_norm="ratio_weighted"), 1),
    ("mistral", ComeSettings(sbi_estimator="angular_all", bi_estimator="released", rho=0.7, rho_rule="released"), 3),
])
def test_incremental_equals_full_bit_for_bit(arch, settings, cache_every):
    base, _ = build_random_model(arch, seed=7)
    ids = calib_ids(2, windows=5, seq_len=20)
    runs = {}
    for mode in ("incremental", "full"):
        model = copy.deepcopy(base)
        result = come(model, ids, 3, settings, Execution(recompute=mode, cache_every=cache_every, batch_size=2))
        runs[mode] = (result, state(model))
    inc, full = runs["incremental"][0], runs["full"][0]
    assert inc.groups == full.groups
    for a, b in zip(inc.iterations, full.iterations):
        assert (a.window_start, a.window_stop, a.ratios, a.bi, a.sbi) == (b.window_start, b.window_stop, b.ratios,
                                                                         b.bi, b.sbi)
        for k in b.sensitivity:
            assert torch.equal(a.sensitivity[k], b.sensitivity[k])
    for k, v in runs["full"][1].items():
        assert torch.equal(runs["incremental"][1][k], v), k
    # full: L0 + (L0-1) + ... forwards; incremental: strictly fewer
    L0 = base.config.num_hidden_layers
    assert full.layer_forwards == sum(it.n_layers for it in full.iterations)
    assert full.iterations[0].n_layers == L0
    assert inc.layer_forwards < full.layer_forwards
    assert inc.iterations[0].layer_forwards == L0


def test_incremental_forward_count_is_layers_from_window():
    model, _ = build_random_model("llama", seed=1)
    result = come(model, calib_ids(0, 4, 16), 3, ComeSettings(), Execution())
    its = result.iterations
    for prev, it in zip(its, its[1:]):  # cache_every=1: re-score exactly layers l*..L-1 of the merged model
        assert it.rescored_from == prev.window_start
        assert it.layer_forwards == it.n_layers - prev.window_start
    assert result.layer_forwards == sum(it.layer_forwards for it in its)


# --------------------------------------------------------------------------- remerge, layer map, rho rule
def test_remerge_forbidden_never_merges_a_merged_layer():
    base, _ = build_random_model("llama", seed=1)
    ids = calib_ids(0, 6, 32)
    allowed = come(copy.deepcopy(base), ids, 3, ComeSettings(), Execution())
    assert max(len(g) for g in allowed.groups) > 2  # on this model the default run does re-merge
    forbidden = come(copy.deepcopy(base), ids, 3, ComeSettings(remerge="forbidden"), Execution())
    groups = initial_groups(8)
    for it in forbidden.iterations:
        assert not touches_merged(groups, it.window_start, it.window_stop)
        assert it.n_leaves == 2
        assert all(math.isinf(s) for l, s in enumerate(it.sbi) if touches_merged(groups, l, l + 1))
        groups = merge_groups(groups, it.window_start, it.window_stop)
    assert groups == forbidden.groups and sorted(len(g) for g in groups) == [1, 1] + [2, 2, 2]


@pytest.mark.parametrize("layers_per_merge,n_remove", [(2, 4), (3, 3), (4, 5)])
def test_layer_map_covers_every_original_layer_once(layers_per_merge, n_remove):
    model, _ = build_random_model("qwen2", seed=2)
    result = come(model, calib_ids(3, 4, 16), n_remove, ComeSettings(layers_per_merge=layers_per_merge), Execution())
    flat = [x for g in result.groups for x in g]
    assert sorted(flat) == list(range(8)) and len(flat) == 8
    assert len(result.groups) == 8 - n_remove == model.config.num_hidden_layers
    m = layers_per_merge - 1
    spans = [it.span for it in result.iterations]
    assert sum(spans) == n_remove and all(s == min(m, n_remove - sum(spans[:i])) for i, s in enumerate(spans))


def test_released_rho_rule_threshold_uses_leaves():
    model, _ = build_random_model("llama", seed=1)
    result = come(model, calib_ids(0, 6, 32), 3, ComeSettings(rho=0.64, rho_rule="released"), Execution())
    for it in result.iterations:
        assert it.rho_threshold == pytest.approx(0.64 ** (1 / (it.n_leaves - 1)))
        assert max(it.ratios) >= it.rho_threshold - 1e-12
        assert sum(it.kv_units) == 2 and sum(it.ffn_units) == 128
    assert any(it.n_leaves == 3 for it in result.iterations)  # ρ^(1/2) = 0.8 was exercised


def test_p_inf_keeps_only_the_higher_bi_layer():
    model, _ = build_random_model("llama", seed=3)
    result = come(model, calib_ids(0, 4, 16), 1, ComeSettings(p=math.inf), Execution())
    it = result.iterations[0]
    top = int(np.argmax(it.bi[it.window_start:it.window_stop + 1]))
    assert it.ratios[top] == 1.0 and it.ffn_units[top] == 128 and it.kv_units[top] == 2


# --------------------------------------------------------------------------- checkpoint
def test_checkpoint_round_trip(tmp_path):
    model, tok = build_random_model("qwen3", seed=5)
    dense_config = copy.deepcopy(model.config)
    ids = calib_ids(4, 4, 16)
    result = come(model, ids, 2, ComeSettings(), Execution())
    settings = {"p": 1.0, "rho": 0.0}
    out = save_merge_checkpoint(result, tok, tmp_path / "ckpt", dense_config=dense_config, base_model="random-qwen3",
                                method="CoMe", variant="", settings={**ComeSettings().__dict__, **settings},
                                execution={"recompute": "incremental"}, calibration={"dataset": "x", "n": 1},
                                target_fraction=0.25)
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    assert loaded.config.num_hidden_layers == 6
    lmap = json.loads((out / "layer_map.json").read_text())
    assert sorted(x for e in lmap for x in e["teacher_layers"]) == list(range(8))
    assert [e["teacher_layers"] for e in lmap] == result.groups
    its = pd.read_parquet(out / "iterations.parquet")
    assert its["window_start"].tolist() == [it.window_start for it in result.iterations]
    assert json.loads(its["groups"].iloc[-1]) == result.groups
    assert its["layer_forwards"].sum() == result.layer_forwards
    sens = load_file(str(out / "sensitivity" / "iter_01.safetensors"))
    assert len(sens) == 2 * 7 and sens["layers.0.kv_group"].shape == (2,)
    run = json.loads((out / "come_run.json").read_text())
    assert run["layer_forwards"] == result.layer_forwards
    assert json.loads((out / "distillation_pairs.json").read_text()) == distillation_pairs(result.groups)
    assert json.loads((out / "pruning.json").read_text())["removed_layers"] == 2
    from layerpuzzle.methods.switches import method_switches
    card = (out / "README.md").read_text()
    assert method_switches("come")["last_layer_output"].note("raw") in card  # the declared switch sentence
    assert method_switches("come")["sbi_estimator"].note("cosine_mean") in card


# --------------------------------------------------------------------------- progress
def test_progress_bar_counts_removed_layers_and_changes_nothing(capsys):
    """Execution(progress=True) draws one bar over the removed layers (to stderr = the rule's log); same merges."""
    ids = calib_ids()
    quiet, _ = build_random_model("llama", seed=3)
    loud = copy.deepcopy(quiet)
    come(quiet, ids, 3, ComeSettings(), Execution(progress=False))
    assert "layers removed" not in capsys.readouterr().err
    come(loud, ids, 3, ComeSettings(), Execution(progress=True))
    err = capsys.readouterr().err
    assert "layers removed" in err and "3/3" in err
    assert all(torch.equal(a, b) for a, b in zip(state(quiet).values(), state(loud).values()))
