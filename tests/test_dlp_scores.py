"""Mag+, Taylor+, ShortGPT and Reverse orders against hand and independent computations."""
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.engine.runner import LayerwiseRunner
from layerpuzzle.engine.scores_io import compute_and_save_scores
from layerpuzzle.methods.dlp import (
    apply_plus_heuristic,
    ascending_order,
    bi_from_rows,
    block_influence,
    magnitude_order,
    magnitude_scores,
    reverse_order,
    shortgpt_order,
    taylor_scores,
)
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import build_random_model

# Elements of one tiny layer (hidden 64, 4 q heads / 2 kv heads of 16, intermediate 128)
PROJ = 64 * 64 + 2 * (32 * 64) + 64 * 64 + 3 * (128 * 64)  # q, k, v, o, gate, up, down = 36,864
NORMS = 2 * 64  # input_layernorm + post_attention_layernorm
QK_NORMS = 2 * 16  # Qwen3 q_norm + k_norm (per head_dim)


def _fill(model, proj_values, norm_value=1.0, bias_value=None):
    """Every projection entry of layer l = ±proj_values[l] (alternating sign), every norm weight = norm_value."""
    with torch.no_grad():
        for l, layer in enumerate(arch.layers(model)):
            for name, p in layer.named_parameters():
                if name.endswith("proj.weight"):
                    sign = torch.ones(p.numel())
                    sign[1::2] = -1
                    p.copy_((proj_values[l] * sign).view_as(p))
                elif name.endswith("norm.weight"):
                    p.fill_(norm_value)
                elif name.endswith("bias") and bias_value is not None:
                    p.fill_(bias_value[l])


# k/64 values are exact in fp32, so the sums below are exact
K = [32, 6, 20, 12, 3, 26, 9, 16]


def test_mag_plus_scores_and_order_by_hand():
    model, _ = build_random_model("llama", seed=0)
    _fill(model, [k / 64 for k in K])
    assert magnitude_scores(model) == [PROJ * k / 64 + NORMS for k in K]
    raw = magnitude_order(model, plus_heuristic=False)
    assert raw.layers == [4, 1, 6, 3, 7, 2, 5, 0]  # ascending k
    plus = magnitude_order(model, plus_heuristic=True)
    # 8 layers: 0-3 and 6, 7 protected -> only 4 and 5 are candidates, the rest follow in ascending order
    assert plus.layers == [4, 5, 1, 6, 3, 7, 2, 0]
    assert plus.protected == [False, False] + [True] * 6
    assert plus.scores[0] == PROJ * 3 / 64 + NORMS


def test_mag_plus_excludes_biases_and_counts_qk_norms():
    q2, _ = build_random_model("qwen2", seed=0)
    # huge biases on the layer with the smallest weights: they must not count
    _fill(q2, [k / 64 for k in K], bias_value=[0.0, 0, 0, 0, 1e6, 0, 0, 0])
    assert magnitude_scores(q2) == [PROJ * k / 64 + NORMS for k in K]
    q3, _ = build_random_model("qwen3", seed=0)
    _fill(q3, [k / 64 for k in K], norm_value=0.5)
    assert magnitude_scores(q3) == [PROJ * k / 64 + 0.5 * (NORMS + QK_NORMS) for k in K]


def _released_magnitude_by_hand(model):
    """The CoMe code's Mag+ for one window: (|W|.sum(1) or |W|).sum(0).item() in the model dtype for
    proj and norm weights, block-summed in an fp32 tensor."""
    out = []
    for layer in arch.layers(model):
        info = []
        for name, p in layer.named_parameters():
            if "proj" in name and "weight" in name:
                info.append(p.detach().abs().pow(1).sum(1).sum(dim=0).item())
            elif "norm" in name and "weight" in name:
                info.append(p.detach().abs().pow(1).sum(dim=0).item())
        out.append(torch.tensor(info).sum(dim=0).item())
    return out


@pytest.mark.parametrize("arch_name", ["llama", "qwen3"])
def test_mag_plus_released_reduction_equals_the_released_code(arch_name):
    model, _ = build_random_model(arch_name, seed=3)
    fp32 = magnitude_scores(model)
    assert magnitude_scores(model, "released") == fp32 == _released_magnitude_by_hand(model)  # fp32: identical
    model.to(torch.bfloat16)
    released = magnitude_scores(model, "released")
    assert released == _released_magnitude_by_hand(model)
    exact = magnitude_scores(model)  # fp32 sums of the bf16 weights
    assert all(r != e for r, e in zip(released, exact))  # bf16 row sums round every layer's score
    assert released == pytest.approx(exact, rel=2e-2)
    order = magnitude_order(model, plus_heuristic=False, reduction="released")
    assert order.scores == sorted(released) and order.info["reduction"] == "released"
    with pytest.raises(ValueError, match="reduction='bf16'; allowed: fp32, released"):
        magnitude_scores(model, "bf16")


def test_plus_heuristic_on_ten_layers():
    model, _ = build_random_model("llama", seed=0, num_hidden_layers=10)
    # smallest magnitudes on protected layers 0, 9, 1, then 5, 8, 6, 2, 7, 4, 3
    k = {0: 1, 9: 2, 1: 3, 5: 4, 8: 5, 6: 6, 2: 7, 7: 8, 4: 9, 3: 10}
    _fill(model, [k[l] / 64 for l in range(10)])
    assert magnitude_order(model, plus_heuristic=False).layers == [0, 9, 1, 5, 8, 6, 2, 7, 4, 3]
    order = magnitude_order(model, plus_heuristic=True)
    assert order.layers == [5, 6, 7, 4, 0, 9, 1, 8, 2, 3]
    assert order.first(4) == [5, 6, 7, 4]  # never 0-3 or 8, 9
    assert apply_plus_heuristic([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], 10) == (
        [7, 6, 5, 4, 9, 8, 3, 2, 1, 0], [False] * 4 + [True] * 6)


def test_ascending_order_is_stable_on_ties():
    assert ascending_order([2.0, 1.0, 1.0, 0.5]) == [3, 1, 2, 0]


def _independent_taylor(model, ids, batch_size, accumulate):
    """Per-layer Σ|Σ_b w·g_b| (or Σ_b Σ|w·g_b|) with plain .backward() and a hand-written shifted CE, fp64."""
    acc = {}
    for i in range(0, ids.shape[0], batch_size):
        x = ids[i : i + batch_size]
        model.zero_grad()
        logits = model(x).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        loss.backward()
        for l, layer in enumerate(arch.layers(model)):
            for name, p in layer.named_parameters():
                if name.endswith("bias"):
                    continue
                s = (p.detach() * p.grad).double()
                key = (l, name)
                acc[key] = acc.get(key, 0) + (s if accumulate == "signed_sum" else s.abs())
    model.zero_grad()
    n = arch.num_layers(model)
    return [sum(float(v.abs().sum()) for (l, _), v in acc.items() if l == j) for j in range(n)]


@pytest.mark.parametrize("arch_name", ["llama", "qwen2", "qwen3"])
@pytest.mark.parametrize("accumulate", ["signed_sum", "abs_per_batch"])
def test_taylor_scores_equal_independent_autograd(arch_name, accumulate):
    model, _ = build_random_model(arch_name, seed=2, num_hidden_layers=2)
    ids = torch.randint(0, 256, (4, 24), generator=torch.Generator().manual_seed(1))
    ours = taylor_scores(model, ids, batch_size=2, accumulate=accumulate)
    ref = _independent_taylor(model, ids, 2, accumulate)
    assert ours == pytest.approx(ref, rel=1e-5)
    assert all(p.grad is None for p in model.parameters())  # no gradient left behind


def test_taylor_accumulations_coincide_for_one_batch_and_differ_for_two():
    model, _ = build_random_model("llama", seed=2, num_hidden_layers=2)
    ids = torch.randint(0, 256, (4, 24), generator=torch.Generator().manual_seed(1))
    one = [taylor_scores(model, ids, batch_size=4, accumulate=a) for a in ("signed_sum", "abs_per_batch")]
    assert one[0] == pytest.approx(one[1], rel=1e-6)
    two = [taylor_scores(model, ids, batch_size=2, accumulate=a) for a in ("signed_sum", "abs_per_batch")]
    # |a + b| <= |a| + |b| entry-wise, strictly somewhere
    assert all(s < a for s, a in zip(*two))


def test_taylor_signed_sum_equals_gradient_of_the_calibration_loss():
    """The paper's Σ|w·∂L/∂w| with L = mean of the batch losses is signed_sum / #batches."""
    model, _ = build_random_model("llama", seed=4, num_hidden_layers=2)
    ids = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(3))
    signed = taylor_scores(model, ids, batch_size=1, accumulate="signed_sum")
    model.zero_grad()
    losses = [model(ids[i : i + 1], labels=ids[i : i + 1]).loss for i in range(4)]
    (sum(losses) / 4).backward()
    paper = [sum(float((p.detach() * p.grad).double().abs().sum()) for n, p in layer.named_parameters()
                 if "weight" in n) for layer in arch.layers(model)]
    assert [s / 4 for s in signed] == pytest.approx(paper, rel=1e-5)


def _released_taylor_by_hand(model, ids):
    """The CoMe code's loop written out: backward per window, .grad never zeroed, after each window
    add Σ_W (|W·grad|.sum(1) or |W·grad|).sum(0).item() (proj and norm weights), block-summed in fp32."""
    model.zero_grad(set_to_none=True)
    importance = [0.0] * arch.num_layers(model)
    for i in range(ids.shape[0]):
        x = ids[i : i + 1]
        model(x, attention_mask=torch.ones_like(x), labels=x).loss.backward()
        for l, layer in enumerate(arch.layers(model)):
            info = []
            for name, p in layer.named_parameters():
                if "proj" in name and "weight" in name:
                    info.append((p * p.grad).detach().abs().sum(1).sum(dim=0).item())
                elif "norm" in name and "weight" in name:
                    info.append((p * p.grad).detach().abs().sum(dim=0).item())
            importance[l] += torch.tensor(info).sum(dim=0).item()
    model.zero_grad(set_to_none=True)
    return importance


@pytest.mark.parametrize("arch_name,dtype", [("llama", torch.float32), ("qwen3", torch.float32),
                                             ("qwen2", torch.float32), ("llama", torch.bfloat16)])
def test_taylor_released_cumulative_equals_the_released_loop(arch_name, dtype):
    model, _ = build_random_model(arch_name, seed=2, num_hidden_layers=3)
    model.to(dtype).eval()
    ids = torch.randint(0, 256, (4, 24), generator=torch.Generator().manual_seed(1))
    ref = _released_taylor_by_hand(model, ids)
    ours = taylor_scores(model, ids, batch_size=4, accumulate="released_cumulative")  # batch_size ignored
    assert ours == ref  # same operations in the same dtype: bit for bit
    assert all(p.grad is None for p in model.parameters())


def test_taylor_released_cumulative_is_neither_paper_reading():
    """Window k counts K - k + 1 times: with 3 windows the released scores differ from both readings,
    and with one window all three coincide."""
    model, _ = build_random_model("llama", seed=2, num_hidden_layers=3)
    ids = torch.randint(0, 256, (3, 24), generator=torch.Generator().manual_seed(4))
    rel = taylor_scores(model, ids, accumulate="released_cumulative")
    for acc in ("signed_sum", "abs_per_batch"):
        other = taylor_scores(model, ids, batch_size=1, accumulate=acc)
        assert all(abs(a - b) > 1e-3 * b for a, b in zip(rel, other))
    one = [taylor_scores(model, ids[:1], accumulate=a) for a in ("signed_sum", "released_cumulative")]
    assert one[0] == pytest.approx(one[1], rel=1e-5)


def test_taylor_rejects_unknown_accumulation():
    model, _ = build_random_model("llama", seed=2, num_hidden_layers=2)
    with pytest.raises(ValueError, match="accumulate='cumulative'.*released_cumulative"):
        taylor_scores(model, torch.zeros(1, 4, dtype=torch.long), accumulate="cumulative")


@pytest.mark.parametrize("last", ["raw", "final_norm"])
def test_shortgpt_bi_equals_engine_artifact(tmp_path, last):
    model, _ = build_random_model("mistral", seed=5)
    ids = torch.randint(0, 256, (3, 20), generator=torch.Generator().manual_seed(2))
    outputs = {k: str(tmp_path / f"{k}.{ext}") for k, ext in
               [("bi", "parquet"), ("sbi", "parquet"), ("activations", "safetensors"), ("sensitivity", "safetensors")]}
    compute_and_save_scores(model, ids, model_name="m", calib_id="c", max_span=1, last_layer_output=last,
                            batch_size=2, outputs=outputs)
    engine = bi_from_rows(pd.read_parquet(outputs["bi"]))
    ours = block_influence(LayerwiseRunner(model, ids, batch_size=2), last_layer_output=last)
    assert ours == engine
    # hand check of one layer: 1 - mean cos(h[l], h[l+1]) from HF hidden states
    with torch.no_grad():
        hs = model(ids, output_hidden_states=True).hidden_states
    cos = F.cosine_similarity(hs[3].float(), hs[4].float(), dim=-1)
    assert ours[3] == pytest.approx(1 - float(cos.mean()), abs=1e-6)
    order = shortgpt_order(ours)
    assert order.layers == [int(i) for i in torch.tensor(ours).argsort(stable=True)]
    assert order.scores == sorted(ours) and not any(order.protected)


def _released_bi_by_hand(model, ids, n_layers):
    """The CoMe code's ShortGPT loop: per window, HF hidden states, cos = diag(in @ out.T) / (|in||out|),
    NaN -> 0.5, clamp to [0, 1], Σ (1 - cos) over tokens and windows, / L."""
    imp = [0.0] * n_layers
    with torch.no_grad():
        for i in range(ids.shape[0]):
            hs = model(ids[i : i + 1], output_hidden_states=True).hidden_states
            for l in range(n_layers):
                a, b = hs[l].reshape(-1, hs[l].shape[-1]), hs[l + 1].reshape(-1, hs[l].shape[-1])
                sim = ((a @ b.T) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))).diagonal()
                imp[l] += float((1 - sim.nan_to_num(nan=0.5).clamp(0, 1)).sum())
    return [v / n_layers for v in imp]


def test_shortgpt_released_bi_equals_the_released_code():
    """A layer whose output turns against its input (large random MLP) has negative token cosines:
    the released BI clamps them, the paper's does not; a zero embedding row gives NaN cosines (0.5)."""
    model, _ = build_random_model("llama", seed=7)
    with torch.no_grad():
        arch.layers(model)[2].mlp.down_proj.weight.mul_(400.0)
        model.model.embed_tokens.weight[5].zero_()
    ids = torch.randint(6, 256, (3, 20), generator=torch.Generator().manual_seed(8))
    ids[:, 1::4] = 5  # zero-norm h[0] at these tokens (not at position 0, where h[1] would stay 0 too)
    n = arch.num_layers(model)
    released = block_influence(LayerwiseRunner(model, ids, 2), "final_norm", estimator="released")
    ref = _released_bi_by_hand(model, ids, n)
    assert released == pytest.approx(ref, rel=1e-5, abs=1e-6)
    paper = block_influence(LayerwiseRunner(model, ids, 2), "final_norm")
    with torch.no_grad():
        hs = model(ids, output_hidden_states=True).hidden_states
    cos2 = F.cosine_similarity(hs[2], hs[3], dim=-1)
    assert (cos2 < 0).any() and paper[2] == pytest.approx(1 - float(cos2.mean()), abs=1e-6)
    # layer 2: the clamp lowers it; layer 0: the zero tokens count 0.5, not 1 - 0; others: only the scale differs
    tokens = ids.numel()
    assert released[2] * n / tokens < paper[2] - 1e-3
    cos0 = F.cosine_similarity(hs[0], hs[1], dim=-1)  # 0 at the zero tokens
    unclamped0 = float((1 - cos0.clamp(0, 1)).sum()) / n
    assert released[0] == pytest.approx(unclamped0 - 0.5 * (ids == 5).sum().item() / n, rel=1e-5)
    for l in (1, 3, 4):
        assert released[l] * n / tokens == pytest.approx(paper[l], rel=1e-5)
    with pytest.raises(ValueError, match="bi_estimator='angular'.*cosine_mean, released"):
        block_influence(LayerwiseRunner(model, ids, 2), estimator="angular")


def test_shortgpt_final_norm_changes_only_the_last_layer():
    model, _ = build_random_model("llama", seed=6)
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    raw = block_influence(LayerwiseRunner(model, ids, 2), "raw")
    normed = block_influence(LayerwiseRunner(model, ids, 2), "final_norm")
    assert raw[:-1] == normed[:-1] and raw[-1] != normed[-1]


def test_shortgpt_published_prefix():
    bi = [0.9, 0.1, 0.5, 0.3, 0.2, 0.8]  # computed order: 1, 4, 3, 2, 5, 0
    order = shortgpt_order(bi, published=[3, 2])
    assert order.layers == [3, 2, 1, 4, 5, 0]
    assert order.source == ["published", "published"] + ["computed"] * 4
    assert order.scores == [0.3, 0.5, 0.1, 0.2, 0.8, 0.9]
    with pytest.raises(ValueError):
        shortgpt_order(bi, published=[3, 3])


def test_reverse_order():
    assert reverse_order(6).layers == [5, 4, 3, 2, 1, 0]
    keep = reverse_order(6, keep_last=2)
    assert keep.layers == [3, 2, 1, 0, 5, 4] and keep.protected == [False] * 4 + [True] * 2
    assert all(math.isnan(s) for s in keep.scores)


def test_pipeline_passes_the_released_switches():
    """compute_order hands each variant's released switch to the method (and records it); the defaults'
    records carry no new key."""
    from layerpuzzle.methods.dlp.pipeline import compute_order

    model, _ = build_random_model("llama", seed=5, num_hidden_layers=6)
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    sg = compute_order("shortgpt", model, variant={"bi_estimator": "released"}, settings={"batch_size": 2}, calib=ids)
    assert sorted(sg.order.scores) == sorted(block_influence(LayerwiseRunner(model, ids, 2), estimator="released"))
    assert sg.order.info["bi_estimator"] == "released"
    assert "bi_estimator" not in compute_order("shortgpt", model, variant={}, calib=ids).order.info
    ty = compute_order("taylor_plus", model, variant={"accumulate": "released_cumulative", "plus_heuristic": False},
                       settings={"batch_size": 2}, calib=ids)
    assert sorted(ty.order.scores) == sorted(taylor_scores(model, ids, accumulate="released_cumulative"))
    assert ty.order.info["batch_size"] == 1
    model.to(torch.bfloat16)
    mg = compute_order("mag_plus", model, variant={"reduction": "released", "plus_heuristic": False})
    assert sorted(mg.order.scores) == sorted(magnitude_scores(model, "released"))
    sl = compute_order("sleb", model, variant={"early_barrier": 0, "latter_barrier": 0, "nll": "released"},
                       settings={"batch_size": 1}, calib=ids, fractions=[0.2])
    assert sl.order.info["nll"] == "released" and 0 in set(sl.candidates.layer)
