"""FuseGPT: Macro Influence vs brute force, FuseLinear arithmetic, group bounds, MI vs MI+F."""
import copy
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from layerpuzzle.engine.runner import LayerwiseRunner
from layerpuzzle.methods.fusegpt import (CoefInit, FuseLinear, fold_fused, fuse_group, fusegpt_prune, group_bounds,
                                         macro_influence, random_windows)
from layerpuzzle.methods.laco import PROJECTIONS
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import build_random_model


def _ids(w=4, s=24, seed=0):
    return torch.randint(0, 256, (w, s), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _last_layer_output(model, ids):
    """Raw output of the last decoder layer (before the final norm), through the HF forward."""
    out = {}
    h = model.model.layers[-1].register_forward_hook(lambda m, a, o: out.setdefault("h", o[0] if isinstance(o, tuple) else o))
    model(ids)
    h.remove()
    return out["h"]


@pytest.mark.parametrize("arch_name", ["llama", "qwen3"])
def test_macro_influence_equals_brute_force(arch_name):
    model, _ = build_random_model(arch_name, seed=1)
    ids = _ids()
    mi = macro_influence(LayerwiseRunner(model, ids, batch_size=3))
    full = _last_layer_output(model, ids)
    for i in range(8):
        pruned = arch.drop_layers(copy.deepcopy(model), [i])
        part = _last_layer_output(pruned, ids)
        expected = 1.0 - F.cosine_similarity(full, part, dim=-1).double().mean().item()
        assert float(mi.scores[i]) == pytest.approx(expected, abs=1e-5)
    assert mi.layer_forwards == 8 + 8 * 7 // 2
    assert mi.least_important() == int(torch.argmin(mi.scores))


def test_group_bounds_are_f_minus_4_to_f_plus_3_clamped():
    assert group_bounds(30, 10) == (6, 14)
    assert group_bounds(30, 2) == (0, 8)
    assert group_bounds(30, 28) == (22, 30)
    assert group_bounds(30, 26) == (22, 30)
    assert group_bounds(5, 2) == (0, 5)


def test_fuse_linear_effective_weight_formula():
    g = torch.Generator().manual_seed(0)
    base = nn.Linear(6, 4, bias=True)
    fl = FuseLinear(base, lora_rank=3, init=CoefInit("kaiming", lora="kaiming"), generator=g)
    w_f, b_f = torch.randn(4, 6, generator=g), torch.randn(4, generator=g)
    fl.add_fused(w_f, b_f, rank=2, init=CoefInit("normal", std=0.5), generator=g)
    with torch.no_grad():
        fl.coef_b[0].fill_(0.25)
    expected_w = base.weight + fl.lora_B @ fl.lora_A + (fl.coef_P[0] @ fl.coef_Q[0]) * w_f
    torch.testing.assert_close(fl.effective_weight(), expected_w)
    torch.testing.assert_close(fl.effective_bias(), base.bias + 0.25 * b_f)
    x = torch.randn(5, 6, generator=g)
    torch.testing.assert_close(fl(x), x @ expected_w.T + base.bias + 0.25 * b_f)
    lin = fl.to_linear()
    torch.testing.assert_close(lin(x), fl(x), rtol=0, atol=1e-6)
    assert not fl.weight.requires_grad and all(p.requires_grad for p in fl.trainable_parameters()["coef"])


def test_zero_init_fusion_is_an_exact_no_op():
    base = nn.Linear(6, 4)
    fl = FuseLinear(base, init=CoefInit("zeros"))
    fl.add_fused(torch.randn(4, 6), None, init=CoefInit("zeros"))
    assert torch.equal(fl.effective_weight(), base.weight) and torch.equal(fl.to_linear().weight, base.weight)


def test_fuse_group_wraps_the_seven_other_layers_and_fold_removes_every_fuselinear():
    model, _ = build_random_model("qwen2", seed=3)
    removed = copy.deepcopy(model.model.layers[5])
    group = fuse_group(model, 5, rank=4, lora_rank=4, init=CoefInit("kaiming"), seed=1)
    assert (group.start, group.stop) == (0, 7) and arch.num_layers(model) == 7
    assert len(group.modules) == 7 * len(PROJECTIONS)
    fl = group.modules["layers.4.self_attn.q_proj"]
    assert torch.equal(fl.fused(0)[0], removed.self_attn.q_proj.weight) and torch.equal(fl.fused(0)[1], removed.self_attn.q_proj.bias)
    ids = _ids(2, 12)
    with torch.no_grad():
        before = model(ids).logits
        assert fold_fused(model) == 49
        torch.testing.assert_close(model(ids).logits, before, rtol=0, atol=1e-5)
    assert not any(isinstance(m, FuseLinear) for m in model.modules())


def test_fusing_a_fused_layer_uses_its_effective_weight():
    model, _ = build_random_model("llama", seed=4)
    fuse_group(model, 6, rank=4, lora_rank=4, init=CoefInit("normal", std=0.3), seed=2)
    donor = model.model.layers[3].mlp.up_proj
    w_eff = donor.effective_weight().detach().clone()
    g2 = fuse_group(model, 3, rank=4, lora_rank=4, init=CoefInit("zeros"), seed=3)
    target = g2.modules["layers.2.mlp.up_proj"]
    assert target.n_fused == 2 and torch.equal(target.fused(1)[0], w_eff)


def test_released_mif_equals_mi_exactly_and_described_does_not():
    model, _ = build_random_model("llama", seed=0)
    ids = _ids(4, 32, seed=1)
    mi, rel, desc = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
    r_mi = fusegpt_prune(mi, ids, 3, fuse=False, batch_size=2)
    r_rel = fusegpt_prune(rel, ids, 3, fuse=True, init=CoefInit("zeros"), rank=8, lora_rank=8, batch_size=2, seed=5)
    r_desc = fusegpt_prune(desc, ids, 3, fuse=True, init=CoefInit("kaiming"), rank=8, lora_rank=8, batch_size=2, seed=5)
    assert r_rel.removed_original == r_mi.removed_original
    sd_mi, sd_rel = mi.state_dict(), rel.state_dict()
    assert sd_mi.keys() == sd_rel.keys() and all(torch.equal(sd_mi[k], sd_rel[k]) for k in sd_mi)
    assert r_desc.removed_original[0] == r_mi.removed_original[0]  # the first score is on the dense model
    with torch.no_grad():
        assert not torch.allclose(desc(ids).logits, mi(ids).logits, atol=1e-4)
    assert r_mi.groups == [[i] for i in range(8) if i not in r_mi.removed_original]
    assert [it["removed_original"] for it in r_mi.iterations] == r_mi.removed_original


def test_random_windows_follow_python_random_offsets():
    from layerpuzzle.models.byte_tokenizer import build_byte_tokenizer

    tok = build_byte_tokenizer()
    rows = ["alpha beta gamma " * 5, "delta epsilon " * 7]
    windows, info = random_windows(rows, tok, n=3, seq_len=10, seed=10)
    ids = tok("\n\n".join(rows), return_tensors="pt").input_ids[0]
    random.seed(10)
    starts = [random.randint(0, ids.numel() - 10 - 1) for _ in range(3)]
    assert info["starts"] == starts
    for w, s in zip(windows, starts):
        assert torch.equal(w, ids[s:s + 10])


# ---------------------------------------------------------------- released-code fidelity
def _released_mi_choice(model, ids):
    """full_importance_eval written out: bf16 states, F.cosine_similarity(dim=-1).mean() per candidate (a bf16
    scalar), torch.tensor(sims), argsort(descending=True)[0]."""
    full = _last_layer_output(model, ids).to(torch.bfloat16)
    sims = []
    for i in range(arch.num_layers(model)):
        part_model = copy.deepcopy(model)
        arch.drop_layers(part_model, [i])
        part = _last_layer_output(part_model, ids).to(torch.bfloat16)
        sims.append(F.cosine_similarity(full, part, dim=-1).mean())
    sim = torch.tensor(sims)
    return sim, int(torch.argsort(sim, descending=True)[0])


def _near_no_op_layers(model, scales):
    """Scale the output projections of the given layers so that skipping them barely changes the output."""
    with torch.no_grad():
        for i, s in scales.items():
            layer = arch.layers(model)[i]
            layer.self_attn.o_proj.weight.mul_(s)
            layer.mlp.down_proj.weight.mul_(s)


def test_bf16_macro_influence_equals_the_released_scores_and_tie_break():
    """Layers 2 and 5 are near no-ops (5 more so): exact MI removes 5; the released bf16 scores round both
    similarities to 1 and argsort(descending)[0] takes the lower index, 2. Ours with mi_precision bfloat16 agrees."""
    model, _ = build_random_model("llama", seed=0)
    _near_no_op_layers(model, {2: 1e-3, 5: 1e-5})
    ids = _ids(4, 24)
    ref_sim, ref_choice = _released_mi_choice(model, ids)
    runner = LayerwiseRunner(model, ids, batch_size=2)
    exact = macro_influence(runner)
    bf16 = macro_influence(runner, precision="bfloat16")
    assert exact.least_important() == 5 and exact.similarity[5] > exact.similarity[2]
    assert ref_choice == 2 and ref_sim[2] == ref_sim[5] == 1.0
    assert bf16.least_important() == ref_choice
    torch.testing.assert_close(bf16.similarity.float(), ref_sim.float(), rtol=0, atol=2 ** -8)  # 1 bf16 step at most
    assert torch.equal(bf16.similarity, bf16.similarity.to(torch.bfloat16).double())  # every value is a bf16 number


def test_bf16_precision_runs_through_fusegpt_prune_and_rejects_unknown_values():
    model, _ = build_random_model("llama", seed=0)
    _near_no_op_layers(model, {2: 1e-3, 5: 1e-5})
    ids = _ids(4, 24)
    exact = fusegpt_prune(copy.deepcopy(model), ids, 1, fuse=False, batch_size=2, device="cpu")
    released = fusegpt_prune(copy.deepcopy(model), ids, 1, fuse=False, batch_size=2, device="cpu",
                             mi_precision="bfloat16")
    assert exact.removed_original == [5] and released.removed_original == [2]
    with pytest.raises(ValueError, match="`mi_precision`: value 'fp16' is not allowed; allowed: exact, bfloat16"):
        fusegpt_prune(copy.deepcopy(model), ids, 1, fuse=False, mi_precision="fp16")


def test_released_bias_fusion_keeps_one_coefficient_and_the_last_fused_layers_own_bias():
    """Released FuseLinear: do_fuse overwrites add_bias with the source's .bias; forward adds fuse_coef_b * add_bias
    (one coefficient vector). Ours (sum) adds every fused layer's effective bias with its own coefficient."""
    model, _ = build_random_model("qwen2", seed=3)
    layers = arch.layers(model)
    q = [layers[i].self_attn.q_proj for i in range(4)]
    # source 2 is itself a FuseLinear with a fused term and a non-zero bias coefficient
    src = FuseLinear(q[2], lora_rank=4, bias_fusion="released")
    src.add_fused(q[3].weight, q[3].bias, rank=4)
    src_sum = FuseLinear(q[2], lora_rank=4)
    src_sum.add_fused(q[3].weight, q[3].bias, rank=4)
    with torch.no_grad():
        src.coef_b_last.fill_(0.5)
        src_sum.coef_b[0].fill_(0.5)
    c = torch.linspace(-1, 1, q[0].out_features)
    rel = FuseLinear(q[0], lora_rank=4, bias_fusion="released")
    for s in (q[1], src):  # what fuse_group hands over under released: the source's own bias
        rel.add_fused(s.weight, s.bias, rank=4)
    with torch.no_grad():
        rel.coef_b_last.copy_(c)
    torch.testing.assert_close(rel.effective_bias(), q[0].bias + c * q[2].bias, rtol=0, atol=0)
    assert len(rel.coef_b) == 0 and rel.trainable_parameters()["lora"][-1] is rel.bias
    summed = FuseLinear(q[0], lora_rank=4)
    for s in (q[1], src_sum):
        summed.add_fused(s.weight, s.effective_bias() if isinstance(s, FuseLinear) else s.bias, rank=4)
    with torch.no_grad():
        for k in range(2):
            summed.coef_b[k].copy_(c)
    torch.testing.assert_close(summed.effective_bias(),
                               q[0].bias + c * q[1].bias + c * (q[2].bias + 0.5 * q[3].bias), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="`bias_fusion`: value 'last' is not allowed; allowed: sum, released"):
        FuseLinear(q[0], bias_fusion="last")


def test_fuse_group_hands_over_the_sources_own_bias_under_released():
    model, _ = build_random_model("qwen2", seed=4)
    fuse_group(model, 3, rank=4, lora_rank=4, group_size=4, bias_fusion="released")  # layers 1, 2, 4 -> 1, 2, 3
    src = arch.layers(model)[2].self_attn.k_proj  # a FuseLinear now; make its effective bias differ from .bias
    with torch.no_grad():
        src.coef_b_last.fill_(2.0)
    own = src.bias.detach().clone()
    assert not torch.equal(src.effective_bias(), own)
    fuse_group(model, 2, rank=4, lora_rank=4, group_size=4, bias_fusion="released")
    target = arch.layers(model)[1].self_attn.k_proj
    assert torch.equal(target.last_fused_bias, own)
