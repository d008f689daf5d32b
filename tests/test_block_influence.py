"""BI and SBI against hand-computed values on tiny tensors, and the streaming pass against HF."""
import math

import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.engine.block_influence import CosineStats, block_influence
from layerpuzzle.engine.layer_scores import score_layers
from layerpuzzle.engine.runner import LayerwiseRunner
from layerpuzzle.models.random_models import build_random_model


def test_bi_hand_computed():
    # token 0: identical -> cos 1; token 1: orthogonal -> cos 0; token 2: opposite -> cos -1
    a = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]])
    b = torch.tensor([[[3.0, 0.0], [0.0, 1.0], [0.0, -1.0]]])
    assert block_influence(a, b) == pytest.approx(1 - (1 + 0 - 1) / 3)
    s = CosineStats()
    s.update(a, b)
    # released BI: sum of 1 - clamp(cos, 0, 1) = 0 + 1 + 1, divided by the number of layers
    assert s.bi_released(n_layers=2) == pytest.approx(2 / 2)
    # released SBI: last token only, arccos(clamp(-1, 0, 1)) / pi = arccos(0)/pi = 0.5
    assert s.sbi_released(n_windows_scored=1) == pytest.approx(0.5)


def test_released_sbi_uses_last_token_of_each_window():
    a = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])
    b = torch.tensor([[[0.0, 1.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
    s = CosineStats()
    s.update(a, b)
    expected = (math.acos(1 / math.sqrt(2)) + math.acos(1.0)) / math.pi
    assert s.last_angular_sum == pytest.approx(expected)
    assert s.n_windows == 2 and s.n_tokens == 4


@pytest.mark.parametrize("last", ["raw", "final_norm"])
def test_streaming_scores_equal_full_hidden_states(last):
    model, _ = build_random_model("qwen2", seed=3)
    ids = torch.randint(0, 256, (5, 24), generator=torch.Generator().manual_seed(0))
    runner = LayerwiseRunner(model, ids, batch_size=2)
    scores = score_layers(runner, max_span=3, last_layer_output=last, progress=False)
    hs = list(model(ids, output_hidden_states=True).hidden_states)  # hs[L] is final-normed in HF
    if last == "raw":
        h = hs[0]
        for layer in model.model.layers:
            h = runner.apply_layer(layer, h, layer.self_attn.layer_idx)
        hs[-1] = h
    rows = {(r["layer"], r["span"], r["estimator"]): r["value"] for r in scores.table.rows()}
    L = len(model.model.layers)
    for l in range(L):
        for m in range(0, 4):
            if l + m + 1 > L:
                assert (l, m, "cosine_mean") not in rows
                continue
            cos = F.cosine_similarity(hs[l], hs[l + m + 1], dim=-1)
            assert rows[(l, m, "cosine_mean")] == pytest.approx(1 - cos.mean().item(), abs=1e-5)
    assert scores.layer_forwards == L
    # 8 layers: m=0 -> 8 windows, m=1 -> 7, m=2 -> 6, m=3 -> 5
    assert len(rows) == 2 * (8 + 7 + 6 + 5)


def test_activation_stats_are_mean_abs_inputs():
    model, _ = build_random_model("llama", seed=1)
    ids = torch.randint(0, 256, (3, 16), generator=torch.Generator().manual_seed(1))
    seen = {}
    layer = model.model.layers[2]
    h1 = layer.mlp.down_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("down", a[0].detach()))
    h2 = layer.self_attn.o_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("o", a[0].detach()))
    model(ids)
    h1.remove(), h2.remove()
    scores = score_layers(LayerwiseRunner(model, ids, batch_size=3), max_span=1, progress=False)
    down, o = scores.activations.mean_abs(2)
    torch.testing.assert_close(down, seen["down"].abs().reshape(-1, 128).mean(0))
    torch.testing.assert_close(o, seen["o"].abs().reshape(-1, 64).mean(0))
