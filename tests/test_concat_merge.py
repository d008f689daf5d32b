"""Concatenation-based merge (docs/methods/come.md, Eq. 5) against head-by-head reference constructions."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.methods.come.concat_merge import (
    concat_merge,
    merge_window,
    query_head_mask,
    select_units,
    top_k_mask,
)
from layerpuzzle.models.architecture import drop_layers
from layerpuzzle.models.random_models import build_random_model

ARCHS = ("llama", "mistral", "qwen2", "qwen3")
S = 7  # tokens in the fixed test input


# --------------------------------------------------------------------------- helpers
def random_scores(model, seed):
    """Distinct random KV-group and FFN sensitivities for every layer."""
    gen = torch.Generator().manual_seed(seed)
    cfg = model.config
    L = cfg.num_hidden_layers
    kv = [torch.rand(cfg.num_key_value_heads, generator=gen) for _ in range(L)]
    ffn = [torch.rand(cfg.intermediate_size, generator=gen) for _ in range(L)]
    return ffn, kv


def equalise_norms(src, dst):
    """Give layer ``dst`` the norm weights of layer ``src`` (so that norm averaging is a no-op)."""
    with torch.no_grad():
        for name, p in dst.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(dict(src.named_parameters())[name])


def fixed_input(model, seed=0):
    """A normalised (1, S, D) input, its RoPE (cos, sin) and an additive causal mask."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, S, model.config.hidden_size, generator=gen)
    pos = torch.arange(S).unsqueeze(0)
    cos, sin = model.model.rotary_emb(x, position_ids=pos)
    mask = torch.full((S, S), -math.inf).triu(1)
    return x, (cos, sin), mask, pos


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def rows(linear, lo, hi, x):
    y = x @ linear.weight[lo:hi].T
    return y + linear.bias[lo:hi] if linear.bias is not None else y


def grouped_heads(groups, n_kv, n_rep):
    """Query heads of the kept KV groups under HF repeat_kv: {g·n_rep + c}."""
    return sorted(g * n_rep + c for g in groups for c in range(n_rep))


def tiled_heads(groups, n_kv, n_rep):
    """Query heads the released code keeps (mask.repeat(n_rep)): {c·n_kv + g}."""
    return sorted(c * n_kv + g for g in groups for c in range(n_rep))


@torch.no_grad()
def reference_attention(layers, kept_groups, x, cos, sin, mask, cfg, heads_of_groups, qk_norms=None):
    """Head-by-head attention of the kept parts of every layer, summed.

    Layer t keeps KV groups G_t (ascending) and query heads Q_t = heads_of_groups(G_t) (ascending);
    inside the merged layer the i-th kept query head attends with the (i // n_rep)-th kept group:
    Σ_t Σ_i o_proj_{Q_t[i]}(softmax(q_{Q_t[i]} k_gᵀ/√d + mask) v_g), g = G_t[i // n_rep].
    """
    n_q, n_kv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    n_rep = n_q // n_kv
    out = torch.zeros_like(x)
    for layer, groups in zip(layers, kept_groups):
        a = layer.self_attn
        for i, h in enumerate(heads_of_groups(groups, n_kv, n_rep)):
            g = groups[i // n_rep]
            k = rows(a.k_proj, g * d, (g + 1) * d, x)
            v = rows(a.v_proj, g * d, (g + 1) * d, x)
            q = rows(a.q_proj, h * d, (h + 1) * d, x)
            if qk_norms is not None:
                q, k = rms(q, qk_norms[0], cfg.rms_norm_eps), rms(k, qk_norms[1], cfg.rms_norm_eps)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + mask, dim=-1)
            out += (p @ v) @ a.o_proj.weight[:, h * d:(h + 1) * d].T
    return out


@torch.no_grad()
def reference_mlp(layers, kept_channels, x):
    """Σ_t W_down^(t)[:, π_t] (silu(W_gate^(t)[π_t] x) ⊙ W_up^(t)[π_t] x)."""
    out = torch.zeros_like(x)
    for layer, idx in zip(layers, kept_channels):
        m = layer.mlp
        a = F.silu(x @ m.gate_proj.weight[idx].T) * (x @ m.up_proj.weight[idx].T)
        out += a @ m.down_proj.weight[:, idx].T
    return out


def assert_exact(got, expected):
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def kept_indices(mask):
    return [int(i) for i in mask.nonzero().flatten()]


# --------------------------------------------------------------------------- unit selection
def test_top_k_mask_keeps_highest_in_original_order():
    s = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7])
    assert top_k_mask(s, 2).tolist() == [False, False, True, False, True]
    assert top_k_mask(s, 0).tolist() == [False] * 5  # not argsort[-0:] == everything
    assert top_k_mask(s, 5).tolist() == [True] * 5
    with pytest.raises(ValueError):
        top_k_mask(s, 6)


def test_query_head_mask_grouped_vs_tiled():
    g = torch.tensor([False, True])
    assert query_head_mask(g, 2, "grouped").tolist() == [False, False, True, True]
    assert query_head_mask(g, 2, "tiled").tolist() == [False, True, False, True]
    g4 = torch.tensor([True, False, False, True])
    assert query_head_mask(g4, 2, "grouped").tolist() == [True, True, False, False, False, False, True, True]
    assert query_head_mask(g4, 2, "tiled").tolist() == [True, False, False, True, True, False, False, True]
    with pytest.raises(ValueError):
        query_head_mask(g, 2, "other")


def test_select_units_uses_integer_budgets():
    kv = [torch.tensor([0.1, 0.9]), torch.tensor([0.8, 0.2])]
    ffn = [torch.arange(10.0), torch.arange(10.0).flip(0)]
    sel = select_units([0.25, 0.75], ffn, kv, n_kv=2, intermediate_size=10)
    # KV: floor(2·0.25) = 0 groups from layer 0, 2 from layer 1; FFN: floor(2.5) = 2 and 8
    assert sel[0].kv_groups.tolist() == [False, False] and sel[1].kv_groups.tolist() == [True, True]
    assert kept_indices(sel[0].ffn_channels) == [8, 9]
    assert kept_indices(sel[1].ffn_channels) == list(range(8))


# --------------------------------------------------------------------------- all-units case
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("ratios, removed", [((1.0, 0.0), 3), ((0.0, 1.0), 2)])
def test_full_ratio_equals_removing_the_other_layer(arch, ratios, removed):
    model, _ = build_random_model(arch, seed=1)
    equalise_norms(model.model.layers[2], model.model.layers[3])
    reference = drop_layers(copy.deepcopy(model), [removed])
    ffn, kv = random_scores(model, seed=5)
    merge_window(model, 2, 3, list(ratios), ffn[2:4], kv[2:4])

    assert model.config.num_hidden_layers == 7
    assert [l.self_attn.layer_idx for l in model.model.layers] == list(range(7))
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, reference(ids).logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_norms_are_plain_means(arch):
    model, _ = build_random_model(arch, seed=2)
    window = list(model.model.layers[1:4])
    ffn, kv = random_scores(model, seed=0)
    merged = concat_merge(window, [0.2, 0.3, 0.5], ffn[1:4], kv[1:4], model.config)
    for name in ("input_layernorm", "post_attention_layernorm"):
        ws = torch.stack([getattr(l, name).weight for l in window])
        torch.testing.assert_close(getattr(merged, name).weight, ws.mean(0))
        assert not torch.allclose(getattr(merged, name).weight, ws[0])  # norms really differ


@pytest.mark.parametrize("qk_norm", ["mean", "ratio_weighted"])
def test_qwen3_qk_norm_rules(qk_norm):
    model, _ = build_random_model("qwen3", seed=3)
    l0, l1 = model.model.layers[4], model.model.layers[5]
    ffn, kv = random_scores(model, seed=1)
    merged = concat_merge([l0, l1], [0.25, 0.75], ffn[4:6], kv[4:6], model.config, qk_norm=qk_norm)
    for name in ("q_norm", "k_norm"):
        w0, w1 = getattr(l0.self_attn, name).weight, getattr(l1.self_attn, name).weight
        expected = (w0 + w1) / 2 if qk_norm == "mean" else 0.25 * w0 + 0.75 * w1
        torch.testing.assert_close(getattr(merged.self_attn, name).weight, expected)
    with pytest.raises(ValueError):
        concat_merge([l0, l1], [0.25, 0.75], ffn[4:6], kv[4:6], model.config, qk_norm="median")


# --------------------------------------------------------------------------- GQA head pairing
GQA_CASES = [
    # arch, n_q, n_kv, window start, ratios (every layer keeps a strict subset of its KV groups)
    ("llama", 4, 2, 2, (0.5, 0.5)),
    ("llama", 8, 2, 2, (0.5, 0.5)),  # n_rep = 4
    ("llama", 8, 4, 1, (0.25, 0.25, 0.5)),  # 3-layer window, KV budgets (1, 1, 2)
    ("mistral", 8, 2, 3, (0.5, 0.5)),
    ("qwen2", 4, 2, 0, (0.5, 0.5)),  # q/k/v biases
    ("qwen3", 8, 2, 5, (0.5, 0.5)),  # q_norm / k_norm
]


@pytest.mark.parametrize("arch, n_q, n_kv, start, ratios", GQA_CASES)
def test_grouped_attention_equals_head_by_head_construction(arch, n_q, n_kv, start, ratios):
    model, _ = build_random_model(arch, seed=4, num_attention_heads=n_q, num_key_value_heads=n_kv)
    cfg = model.config
    window = list(model.model.layers[start:start + len(ratios)])
    ffn, kv = random_scores(model, seed=11)
    ffn, kv = ffn[start:start + len(ratios)], kv[start:start + len(ratios)]
    sel = select_units(ratios, ffn, kv, n_kv, cfg.intermediate_size)
    groups = [kept_indices(s.kv_groups) for s in sel]
    assert all(0 < len(g) < n_kv for g in groups)  # strict subsets: the case where the pairing matters
    assert any(g != list(range(len(g))) for g in groups)  # and not just the leading groups

    x, (cos, sin), mask, _ = fixed_input(model)
    qk = None
    if arch == "qwen3":
        qk = tuple(torch.stack([getattr(l.self_attn, n).weight for l in window]).mean(0) for n in ("q_norm", "k_norm"))
    expected_grouped = reference_attention(window, groups, x, cos, sin, mask, cfg, grouped_heads, qk)
    expected_tiled = reference_attention(window, groups, x, cos, sin, mask, cfg, tiled_heads, qk)
    assert (expected_grouped - expected_tiled).abs().max() > 1e-2

    d = cfg.head_dim
    for mapping, heads_of_groups, expected in (("grouped", grouped_heads, expected_grouped),
                                               ("tiled", tiled_heads, expected_tiled)):
        merged = concat_merge(window, ratios, ffn, kv, cfg, query_mapping=mapping)
        q_rows = [l.self_attn.q_proj.weight[h * d:(h + 1) * d]
                  for l, g in zip(window, groups) for h in heads_of_groups(g, n_kv, n_q // n_kv)]
        assert_exact(merged.self_attn.q_proj.weight, torch.cat(q_rows))
        with torch.no_grad():
            got = merged.self_attn(x, position_embeddings=(cos, sin), attention_mask=mask[None, None])[0]
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_selected_rows_and_columns_grouped_vs_tiled():
    model, _ = build_random_model("llama", seed=6)  # n_q 4, n_kv 2, d_h 16
    l0, l1 = model.model.layers[0], model.model.layers[1]
    kv = [torch.tensor([0.1, 0.9]), torch.tensor([0.8, 0.2])]  # layer 0 keeps group 1, layer 1 group 0
    ffn = [torch.rand(128), torch.rand(128)]
    d = 16

    def head_rows(w, heads):
        return torch.cat([w[h * d:(h + 1) * d] for h in heads])

    def head_cols(w, heads):
        return torch.cat([w[:, h * d:(h + 1) * d] for h in heads], dim=1)

    # grouped: group 1 -> q-heads {2, 3}; group 0 -> {0, 1}. tiled: group 1 -> {1, 3}; group 0 -> {0, 2}
    for mapping, heads0, heads1 in (("grouped", [2, 3], [0, 1]), ("tiled", [1, 3], [0, 2])):
        m = concat_merge([l0, l1], [0.5, 0.5], ffn, kv, model.config, query_mapping=mapping).self_attn
        a0, a1 = l0.self_attn, l1.self_attn
        q = torch.cat([head_rows(a0.q_proj.weight, heads0), head_rows(a1.q_proj.weight, heads1)])
        o = torch.cat([head_cols(a0.o_proj.weight, heads0), head_cols(a1.o_proj.weight, heads1)], dim=1)
        assert_exact(m.q_proj.weight, q)
        assert_exact(m.o_proj.weight, o)
        for proj in ("k_proj", "v_proj"):  # lower layer first: layer 0's group 1, then layer 1's group 0
            w = torch.cat([getattr(a0, proj).weight[d:2 * d], getattr(a1, proj).weight[:d]])
            assert_exact(getattr(m, proj).weight, w)


# --------------------------------------------------------------------------- FFN and the whole layer
def test_ffn_rows_columns_and_output():
    model, _ = build_random_model("llama", seed=7)
    l0, l1 = model.model.layers[5], model.model.layers[6]
    ffn, kv = random_scores(model, seed=2)
    merged = concat_merge([l0, l1], [0.25, 0.75], ffn[5:7], kv[5:7], model.config)
    keep0 = sorted(torch.argsort(ffn[5])[-32:].tolist())  # floor(128·0.25) = 32
    keep1 = sorted(torch.argsort(ffn[6])[-96:].tolist())
    m0, m1 = l0.mlp, l1.mlp
    assert_exact(merged.mlp.gate_proj.weight, torch.cat([m0.gate_proj.weight[keep0], m1.gate_proj.weight[keep1]]))
    assert_exact(merged.mlp.up_proj.weight, torch.cat([m0.up_proj.weight[keep0], m1.up_proj.weight[keep1]]))
    assert_exact(merged.mlp.down_proj.weight,
                 torch.cat([m0.down_proj.weight[:, keep0], m1.down_proj.weight[:, keep1]], dim=1))
    x = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(merged.mlp(x), reference_mlp([l0, l1], [keep0, keep1], x), rtol=1e-5, atol=1e-5)


def test_merged_decoder_layer_equals_parallel_partial_layers():
    """x + Σ_t Attn_t^sel(norm_avg(x)), then h + Σ_t FFN_t^sel(norm_avg(h)) (docs/methods/come.md, functional note)."""
    model, _ = build_random_model("llama", seed=8, num_attention_heads=8, num_key_value_heads=4)
    cfg = model.config
    window = list(model.model.layers[2:5])
    ratios = (0.3, 0.2, 0.5)  # KV budgets (1, 0, 3): a layer with no heads; FFN (38, 25, 65)
    ffn, kv = random_scores(model, seed=3)
    sel = select_units(ratios, ffn[2:5], kv[2:5], 4, cfg.intermediate_size)
    assert [int(s.kv_groups.sum()) for s in sel] == [1, 0, 3]
    assert [int(s.ffn_channels.sum()) for s in sel] == [38, 25, 65]
    merged = concat_merge(window, ratios, ffn[2:5], kv[2:5], cfg)

    x, (cos, sin), mask, pos = fixed_input(model, seed=1)
    w_in = torch.stack([l.input_layernorm.weight for l in window]).mean(0)
    w_post = torch.stack([l.post_attention_layernorm.weight for l in window]).mean(0)
    groups = [kept_indices(s.kv_groups) for s in sel]
    channels = [kept_indices(s.ffn_channels) for s in sel]
    h = x + reference_attention(window, groups, rms(x, w_in, cfg.rms_norm_eps), cos, sin, mask, cfg, grouped_heads)
    expected = h + reference_mlp(window, channels, rms(h, w_post, cfg.rms_norm_eps))
    with torch.no_grad():
        got = merged(x, attention_mask=mask[None, None], position_ids=pos, position_embeddings=(cos, sin))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- shapes, biases, invariants
@pytest.mark.parametrize("arch", ARCHS)
def test_merge_window_keeps_shapes_and_leaves_inputs_untouched(arch):
    model, _ = build_random_model(arch, seed=9)
    originals = list(model.model.layers)
    before = [{k: v.clone() for k, v in l.state_dict().items()} for l in originals]
    types = list(getattr(model.config, "layer_types", None) or [])
    ffn, kv = random_scores(model, seed=4)
    merge_window(model, 5, 6, [0.3, 0.7], ffn[5:7], kv[5:7])

    merged = model.model.layers[5]
    assert all(merged is not l for l in originals)
    assert model.model.layers[6] is originals[7] and model.model.layers[4] is originals[4]
    assert {k: v.shape for k, v in merged.state_dict().items()} == {k: v.shape for k, v in before[5].items()}
    for layer, snapshot in zip(originals, before):
        for k, v in layer.state_dict().items():
            assert torch.equal(v, snapshot[k]), k
    assert model.config.num_hidden_layers == 7
    if types:
        assert model.config.layer_types == types[:6] + types[7:]
    ids = torch.randint(0, 256, (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.isfinite(model(ids).logits).all()


def test_qwen2_biases_are_the_selected_rows():
    model, _ = build_random_model("qwen2", seed=10)
    l0, l1 = model.model.layers[0], model.model.layers[1]
    kv = [torch.tensor([0.1, 0.9]), torch.tensor([0.8, 0.2])]
    ffn, _ = random_scores(model, seed=5)
    m = concat_merge([l0, l1], [0.5, 0.5], ffn[:2], kv, model.config).self_attn
    d = 16
    a0, a1 = l0.self_attn, l1.self_attn
    assert_exact(m.q_proj.bias, torch.cat([a0.q_proj.bias[2 * d:], a1.q_proj.bias[:2 * d]]))
    assert_exact(m.k_proj.bias, torch.cat([a0.k_proj.bias[d:], a1.k_proj.bias[:d]]))
    assert_exact(m.v_proj.bias, torch.cat([a0.v_proj.bias[d:], a1.v_proj.bias[:d]]))
    assert m.o_proj.bias is None


def test_output_projection_biases_are_ratio_weighted():
    model, _ = build_random_model("llama", seed=11, attention_bias=True, mlp_bias=True)
    l0, l1 = model.model.layers[0], model.model.layers[1]
    ffn, kv = random_scores(model, seed=6)
    m = concat_merge([l0, l1], [0.25, 0.75], ffn[:2], kv[:2], model.config)
    a0, a1 = l0.self_attn, l1.self_attn
    torch.testing.assert_close(m.self_attn.o_proj.bias, 0.25 * a0.o_proj.bias + 0.75 * a1.o_proj.bias)
    torch.testing.assert_close(m.mlp.down_proj.bias, 0.25 * l0.mlp.down_proj.bias + 0.75 * l1.mlp.down_proj.bias)
    assert not torch.allclose(m.mlp.down_proj.bias, (l0.mlp.down_proj.bias + l1.mlp.down_proj.bias) / 2)
    keep0 = sorted(torch.argsort(ffn[0])[-32:].tolist())
    keep1 = sorted(torch.argsort(ffn[1])[-96:].tolist())
    assert_exact(m.mlp.gate_proj.bias, torch.cat([l0.mlp.gate_proj.bias[keep0], l1.mlp.gate_proj.bias[keep1]]))


def test_zero_unit_layer_contributes_nothing():
    model, _ = build_random_model("llama", seed=12)
    l0, l1 = model.model.layers[3], model.model.layers[4]
    ffn, kv = random_scores(model, seed=7)
    m = concat_merge([l0, l1], [0.03, 0.97], ffn[3:5], kv[3:5], model.config)  # KV (0, 2), FFN (3, 125)
    for proj in ("q_proj", "k_proj", "v_proj"):
        assert_exact(getattr(m.self_attn, proj).weight, getattr(l1.self_attn, proj).weight)
    assert_exact(m.self_attn.o_proj.weight, l1.self_attn.o_proj.weight)
    keep0 = sorted(torch.argsort(ffn[3])[-3:].tolist())
    assert_exact(m.mlp.gate_proj.weight[:3], l0.mlp.gate_proj.weight[keep0])


def test_invalid_arguments_raise():
    model, _ = build_random_model("llama", seed=13)
    ffn, kv = random_scores(model, seed=8)
    layers = list(model.model.layers[:2])
    with pytest.raises(ValueError):
        concat_merge(layers, [0.5, 0.3, 0.2], ffn[:3], kv[:3], model.config)
    with pytest.raises(ValueError):
        concat_merge(layers, [0.5, 0.5], ffn[:1], kv[:2], model.config)
    with pytest.raises(ValueError):
        concat_merge(layers, [0.5, 0.5], [ffn[0], ffn[1][:5]], kv[:2], model.config)
    with pytest.raises(ValueError):
        concat_merge(layers, [0.5, 0.5], ffn[:2], kv[:2], model.config, query_mapping="interleaved")
    with pytest.raises(ValueError):
        merge_window(model, 3, 3, [1.0], ffn[3:4], kv[3:4])
    with pytest.raises(ValueError):
        merge_window(model, 7, 8, [0.5, 0.5], ffn[6:8], kv[6:8])
