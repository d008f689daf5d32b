"""LLM-Pruner block-wise width pruning on tiny random models: importance, surgery, ratios, bad input."""
from __future__ import annotations

import copy
import math
import time

import pytest
import torch

from layerpuzzle.methods.llm_pruner import prune_width, ratio_for_sparsity, removed_params, units_to_prune
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import build_random_model

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
# 4 KV groups of 2 query heads each (GQA), head_dim 16
GQA = dict(num_attention_heads=8, num_key_value_heads=4)
MHA = dict(num_attention_heads=4, num_key_value_heads=4)


def calib(n=4, seq=16, seed=0):
    return torch.randint(0, 256, (n, seq), generator=torch.Generator().manual_seed(seed))


def probe():
    return torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(7))


# ---------------------------------------------------------------------------- brute force, written out per unit
def brute_statistics(model, ids):
    """g = grad of the batch-mean loss (one backward, .grad); H = mean of per-window squared grads."""
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()
    g = {n: p.grad.clone() for n, p in model.named_parameters()}
    h = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for j in range(ids.shape[0]):
        model.zero_grad()
        model(input_ids=ids[j : j + 1], labels=ids[j : j + 1]).loss.backward()
        for n, p in model.named_parameters():
            h[n] += p.grad ** 2 / ids.shape[0]
    model.zero_grad()
    return g, h


def brute_salience(model, g, h, importance):
    out = {}
    for n, p in model.named_parameters():
        w = p.detach()
        if importance == "param_first":
            out[n] = w * g[n]
        elif importance == "param_second":
            out[n] = w * h[n] * w
        else:
            out[n] = w * g[n] - 0.5 * w * h[n] * w
    return out


def brute_layer_scores(model, s, i, how="sum"):
    """Per KV group / MLP channel, by explicit slicing (query head q belongs to KV group q // n_rep)."""
    cfg = model.config
    d, n_kv = cfg.head_dim, cfg.num_key_value_heads
    n_rep = cfg.num_attention_heads // n_kv
    pre = f"model.layers.{i}."
    q, k, v, o = (s[pre + f"self_attn.{n}.weight"] for n in ATTN)
    attn = []
    for grp in range(n_kv):
        heads = [grp * n_rep + r for r in range(n_rep)]
        per_pos = []
        for c in range(d):
            tq = sum(q[hd * d + c].abs().sum() for hd in heads)
            tk, tv = k[grp * d + c].abs().sum(), v[grp * d + c].abs().sum()
            to = sum(o[:, hd * d + c].abs().sum() for hd in heads)
            root = tq if n_rep == 1 else tk  # hf_prune.py roots at q_proj, llama3.py (GQA) at k_proj
            per_pos.append(combine((tq, tk, tv, to), how, root))
        attn.append(float(sum(per_pos)))
    gate, up, down = (s[pre + f"mlp.{n}.weight"] for n in MLP)
    mlp = []
    for c in range(gate.shape[0]):
        t = (gate[c].abs().sum(), up[c].abs().sum(), down[:, c].abs().sum())
        mlp.append(float(combine(t, how, t[0])))
    return attn, mlp


def combine(terms, how, root):
    if how == "sum":
        return sum(terms)
    if how == "mean":
        return sum(terms) / len(terms)
    if how == "max":
        return max(terms)
    if how == "prod":
        return math.prod(terms)
    return root


@pytest.mark.parametrize("importance,how,heads", [
    ("param_first", "sum", GQA), ("param_second", "sum", GQA), ("param_mix", "sum", GQA), ("param_mix", "max", GQA),
    ("param_first", "mean", GQA), ("param_first", "prod", GQA), ("param_first", "first", GQA),
    ("param_first", "first", MHA), ("param_mix", "sum", MHA)])
def test_unit_importance_equals_a_brute_force_taylor_sum(importance, how, heads):
    model, _ = build_random_model("llama", seed=3, **heads)
    ids = calib()
    g, h = brute_statistics(model, ids)
    s = brute_salience(model, g, h, importance)
    expected = {i: brute_layer_scores(model, s, i, how) for i in (4, 5)}
    _, rec = prune_width(model, ids, ratio=0.5, importance=importance, aggregation=how, keep_scores=True)
    assert [e["layer"] for e in rec["scores"]] == [4, 5]
    for e in rec["scores"]:
        attn, mlp = expected[e["layer"]]
        torch.testing.assert_close(torch.tensor(e["kv_groups"]), torch.tensor(attn), rtol=1e-4, atol=0)
        torch.testing.assert_close(torch.tensor(e["mlp_channels"]), torch.tensor(mlp), rtol=1e-4, atol=0)
        # the lowest half goes: 2 of 4 KV groups, 64 of 128 channels
        removed = next(r for r in rec["removed"] if r["layer"] == e["layer"])
        assert removed["kv_groups"] == sorted(torch.tensor(attn).argsort()[:2].tolist())
        assert removed["mlp_channels"] == sorted(torch.tensor(mlp).argsort()[:64].tolist())


def test_chunked_gradient_equals_one_batch():
    """batch_size only changes how the windows are fed: the importances are the same."""
    ids = calib(n=4)
    recs = []
    for bs in (None, 1, 3):
        model, _ = build_random_model("llama", seed=3, **GQA)
        recs.append(prune_width(model, ids, ratio=0.5, importance="param_first", batch_size=bs, keep_scores=True)[1])
    for r in recs[1:]:
        for a, b in zip(recs[0]["scores"], r["scores"]):
            torch.testing.assert_close(torch.tensor(a["mlp_channels"]), torch.tensor(b["mlp_channels"]),
                                       rtol=1e-4, atol=1e-9)


# ---------------------------------------------------------------------------- pruned == dense with units zeroed
def zero_units(model, removed):
    """Zero, in a dense model, every weight and bias of the removed KV groups and MLP channels."""
    cfg = model.config
    d, n_rep = cfg.head_dim, cfg.num_attention_heads // cfg.num_key_value_heads
    with torch.no_grad():
        for r in removed:
            layer = arch.layers(model)[r["layer"]]
            a, m = layer.self_attn, layer.mlp
            for grp in r.get("kv_groups", []):
                for hd in range(grp * n_rep, grp * n_rep + n_rep):
                    a.q_proj.weight[hd * d:(hd + 1) * d] = 0
                    a.o_proj.weight[:, hd * d:(hd + 1) * d] = 0
                    if a.q_proj.bias is not None:
                        a.q_proj.bias[hd * d:(hd + 1) * d] = 0
                for lin in (a.k_proj, a.v_proj):
                    lin.weight[grp * d:(grp + 1) * d] = 0
                    if lin.bias is not None:
                        lin.bias[grp * d:(grp + 1) * d] = 0
            for c in r.get("mlp_channels", []):
                m.gate_proj.weight[c] = 0
                m.up_proj.weight[c] = 0
                m.down_proj.weight[:, c] = 0


@pytest.mark.parametrize("arch_name,overrides", [("llama", MHA), ("llama", GQA), ("mistral", GQA),
                                                 ("qwen2", GQA), ("qwen3", GQA)])
def test_pruned_model_equals_dense_with_the_units_zeroed(arch_name, overrides):
    model, _ = build_random_model(arch_name, seed=11, **overrides)
    dense = copy.deepcopy(model)
    _, rec = prune_width(model, calib(), ratio=0.5, layers=(2, 7), importance="param_mix")
    n_kv, n_rep = dense.config.num_key_value_heads, dense.config.num_attention_heads // dense.config.num_key_value_heads
    for r in rec["removed"]:
        assert len(r["kv_groups"]) == n_kv // 2 and len(r["mlp_channels"]) == 64
        a = arch.layers(model)[r["layer"]].self_attn
        # whole KV groups with their query heads: q keeps n_rep heads per kept KV head
        assert a.q_proj.out_features == (n_kv // 2) * n_rep * 16 and a.k_proj.out_features == (n_kv // 2) * 16
        assert a.o_proj.in_features == a.q_proj.out_features
    assert [w["intermediate_size"] for w in rec["layers"]] == [128, 128, 64, 64, 64, 64, 64, 128]
    zero_units(dense, rec["removed"])
    x = probe()
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, dense(x).logits, rtol=1e-5, atol=1e-5)
    # the surgery changed the model: it is not the unzeroed dense one
    assert rec["params_after"] < rec["params_before"] == arch.count_parameters(dense)


def test_default_layers_keep_the_first_four_and_last_two():
    model, _ = build_random_model("llama", seed=1, num_hidden_layers=10, **GQA)
    _, rec = prune_width(model, calib(), ratio=0.25)
    assert rec["settings"]["attention_layers"] == [4, 8] and rec["settings"]["mlp_layers"] == [4, 8]
    assert [w["num_key_value_heads"] for w in rec["layers"]] == [4] * 4 + [3] * 4 + [4] * 2
    assert [w["intermediate_size"] for w in rec["layers"]] == [128] * 4 + [96] * 4 + [128] * 2
    assert rec["settings"]["importance"] == "param_mix" and rec["settings"]["aggregation"] == "sum"


def test_attention_and_mlp_ranges_can_differ():
    model, _ = build_random_model("llama", seed=1, **GQA)
    _, rec = prune_width(model, calib(), ratio=0.5, layers=(1, 3), mlp_layers=(5, 7))
    assert [w["num_key_value_heads"] for w in rec["layers"]] == [4, 2, 2, 4, 4, 4, 4, 4]
    assert [w["intermediate_size"] for w in rec["layers"]] == [128] * 5 + [64, 64, 128]


# ---------------------------------------------------------------------------- counts, parameter ratio, timing
def test_units_to_prune_follows_the_released_local_rule():
    assert units_to_prune(32, 128, 0.25) == 8  # LLaMA-7B heads at 25 %
    assert units_to_prune(11008, 1, 0.25) == 2752
    assert units_to_prune(3, 64, 0.5) == 1  # SmolLM2's 3 KV groups: 192 − ⌊96⌋ = 96 channels -> 1 group
    assert units_to_prune(3, 64, 0.2) == 0
    assert units_to_prune(10, 1, 0.9) == 9  # 10·(1 − 0.9) = 0.9999999999999998 counts as 1


def test_closed_form_parameter_count_and_the_solved_ratio():
    model, _ = build_random_model("qwen2", seed=2, **GQA)  # q/k/v biases count too
    layers = list(range(4, 6))
    for r in (0.1, 0.3, 0.5, 0.77):
        m = copy.deepcopy(model)
        _, rec = prune_width(m, calib(n=2), ratio=r, importance="param_first")
        assert removed_params(model, r, layers, layers) == rec["params_before"] - rec["params_after"]
    total = arch.count_parameters(model)
    ratio, achieved = ratio_for_sparsity(model, 0.10, layers, layers)
    assert achieved <= 0.10 and achieved == removed_params(model, ratio, layers, layers) / total
    # the next count up overshoots: no ratio lands closer to 10 % from below
    bigger = [k / 128 for k in range(1, 128) if k / 128 > ratio]
    assert removed_params(model, bigger[0], layers, layers) / total > 0.10
    _, rec = prune_width(model, calib(n=2), ratio=ratio)
    assert math.isclose(rec["sparsity"], achieved, rel_tol=1e-12)
    with pytest.raises(ValueError, match="below the smallest step"):
        ratio_for_sparsity(model, 1e-6, layers, layers)


def test_pruning_seconds_is_the_core_computation():
    model, _ = build_random_model("llama", seed=1, **GQA)
    t0 = time.perf_counter()
    _, rec = prune_width(model, calib(), ratio=0.5)
    wall = time.perf_counter() - t0
    assert 0 < rec["pruning_seconds"] <= wall and rec["timing"] == {"core_s": rec["pruning_seconds"]}


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("key,value,needle", [
    ("ratio", 0, "`ratio`: value 0 is not allowed; allowed: a number in (0, 1)"),
    ("ratio", 1.0, "`ratio`: value 1.0 is not allowed; allowed: a number in (0, 1)"),
    ("ratio", -0.2, "`ratio`: value -0.2 is not allowed"),
    ("ratio", float("nan"), "`ratio`: value nan is not allowed"),
    ("ratio", 0.999, "`ratio`: value 0.999 would remove all 4 KV groups of layer 4; allowed: a ratio that keeps"),
    ("layers", (4, 9), "`layers`: value (4, 9) is not allowed for this model of 8 layers; allowed: (start, end) "
                       "with 0 <= start < end <= 8"),
    ("layers", (5, 5), "`layers`: value (5, 5) is not allowed"),
    ("layers", (-1, 3), "`layers`: value (-1, 3) is not allowed"),
    ("mlp_layers", (0, 12), "`mlp_layers`: value (0, 12) is not allowed"),
    ("importance", "taylor", "`importance`: value 'taylor' is not allowed; allowed: param_first, param_second, "
                             "param_mix"),
    ("aggregation", "last", "`aggregation`: value 'last' is not allowed; allowed: sum, mean, max, prod, first"),
    ("batch_size", 0, "`batch_size`: value 0 is not allowed"),
])
def test_bad_input_is_rejected_with_key_value_and_what_is_allowed(key, value, needle):
    model, _ = build_random_model("llama", seed=1, **GQA)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = {"ratio": 0.5, key: value}
    with pytest.raises(ValueError) as err:
        prune_width(model, calib(), **kwargs)
    assert needle in str(err.value)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing was touched


def test_bad_calibration_and_too_shallow_default():
    model, _ = build_random_model("llama", seed=1, num_hidden_layers=5, **GQA)
    with pytest.raises(ValueError, match=r"`layers`: value \(4, 3\) is not allowed for this model of 5 layers"):
        prune_width(model, calib(), ratio=0.5)
    with pytest.raises(ValueError, match="`calib_ids`"):
        prune_width(model, calib().float(), ratio=0.5, layers=(1, 3))
