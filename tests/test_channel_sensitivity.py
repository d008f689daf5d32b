"""Channel sensitivity S^(l) (docs/layer_scores.md, Eq. 4) against hand computations."""

import torch
import pytest

from layerpuzzle.engine.channel_sensitivity import ffn_channel_sensitivity, kv_group_sensitivity, layer_sensitivity
from layerpuzzle.models.random_models import build_random_model


def test_ffn_channel_sensitivity_hand_computed():
    act = torch.tensor([1.0, 2.0, 0.5])
    w_down = torch.tensor([[1.0, -2.0, 0.0], [3.0, 1.0, -4.0]])  # column L1 norms (4, 3, 4)
    torch.testing.assert_close(ffn_channel_sensitivity(act, w_down), torch.tensor([4.0, 6.0, 2.0]))


def test_kv_group_sensitivity_hand_computed():
    # n_kv = 2, n_rep = 2, head_dim = 2: q-heads 0,1 -> group 0 (channels 0..3), heads 2,3 -> group 1 (4..7)
    act = torch.arange(1.0, 9.0)
    w_o = torch.tensor([[1.0, -1.0, 1.0, -1.0, 2.0, -2.0, 2.0, -2.0]])
    s = kv_group_sensitivity(act, w_o, n_kv=2, n_rep=2, head_dim=2)
    # per channel (1, 2, 3, 4, 10, 12, 14, 16); a tiled grouping would give (6.25, 9.25)
    torch.testing.assert_close(s, torch.tensor([2.5, 13.0]))


def test_kv_group_sensitivity_mha_is_per_head():
    act = torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0, 1.0])
    w_o = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.0, -1.0, 0.0, 2.0, 1.0, 0.0]])
    # column L1 (1, 2, 1, 3, 2, 1) -> channel scores (1, 6, 2, 6, 10, 1), heads of 2 channels
    s = kv_group_sensitivity(act, w_o, n_kv=3, n_rep=1, head_dim=2)
    torch.testing.assert_close(s, torch.tensor([3.5, 4.0, 5.5]))


def test_mean_abs_activation_is_enough():
    """mean over tokens and channels of |a|·w == mean over channels of (E_t|a|)·w."""
    gen = torch.Generator().manual_seed(0)
    n_kv, n_rep, d_h, d = 2, 4, 3, 5
    tokens = torch.randn(50, n_kv * n_rep * d_h, generator=gen)
    w_o = torch.randn(d, n_kv * n_rep * d_h, generator=gen)
    per_token = tokens.abs() * w_o.abs().sum(0)  # (T, channels)
    direct = per_token.view(50, n_kv, n_rep * d_h).mean(dim=(0, 2))
    torch.testing.assert_close(kv_group_sensitivity(tokens.abs().mean(0), w_o, n_kv, n_rep, d_h), direct)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        ffn_channel_sensitivity(torch.ones(4), torch.ones(2, 3))
    with pytest.raises(ValueError):
        kv_group_sensitivity(torch.ones(8), torch.ones(2, 8), n_kv=2, n_rep=2, head_dim=3)


def test_layer_sensitivity_on_a_random_model():
    model, _ = build_random_model("llama", seed=3, num_attention_heads=8, num_key_value_heads=2)
    layer, cfg = model.model.layers[1], model.config
    gen = torch.Generator().manual_seed(1)
    down_act = torch.rand(cfg.intermediate_size, generator=gen)
    o_act = torch.rand(8 * 16, generator=gen)
    ffn, kv = layer_sensitivity(layer, down_act, o_act, cfg)
    assert ffn.shape == (cfg.intermediate_size,) and kv.shape == (2,)
    w_down, w_o = layer.mlp.down_proj.weight.detach(), layer.self_attn.o_proj.weight.detach()
    j = 17
    assert ffn[j].item() == pytest.approx(down_act[j].item() * w_down[:, j].abs().sum().item(), rel=1e-6)
    # group 1 owns q-heads 4..7 = o_proj input channels 64..127
    expected = (o_act[64:] * w_o[:, 64:].abs().sum(0)).mean().item()
    assert kv[1].item() == pytest.approx(expected, rel=1e-6)
