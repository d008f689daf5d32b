"""The layerwise runner reproduces the HF forward exactly and counts layer forwards."""
import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.engine.runner import LayerwiseRunner
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import ARCHITECTURES, build_random_model


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_runner_matches_hf_forward(name):
    model, _ = build_random_model(name, seed=2)
    ids = torch.randint(0, 256, (5, 20), generator=torch.Generator().manual_seed(0))
    runner = LayerwiseRunner(model, ids, batch_size=2)
    last = runner.run(runner.embed())
    logits = torch.cat([model.lm_head(model.model.norm(h)) for h in last])
    torch.testing.assert_close(logits, model(ids).logits, rtol=0, atol=1e-5)
    assert runner.layer_forwards == arch.num_layers(model)
    ref = model(ids).logits
    nll = sum(F.cross_entropy(ref[i, :-1], ids[i, 1:]).item() * 20 for i in range(5))
    assert runner.nll() == pytest.approx(nll, rel=1e-5)


def test_resume_from_cached_layer_input_equals_full_run():
    model, _ = build_random_model("llama", seed=4)
    ids = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(2))
    runner = LayerwiseRunner(model, ids, batch_size=4)
    cached = {}
    runner.run(runner.embed(), on_layer=lambda i, h_in, h_out: cached.setdefault(i, h_in))
    full = runner.nll()
    assert runner.nll(hidden=cached[5], start=5) == pytest.approx(full, rel=1e-6)


def test_drop_layers_keeps_config_consistent():
    model, _ = build_random_model("qwen3", seed=0)
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(3))
    kept = [model.model.layers[i] for i in (0, 1, 2, 4, 5, 7)]
    runner = LayerwiseRunner(model, ids)
    h = runner.embed()
    for layer in kept:
        h = runner.layer(0, h, module=layer)  # all full attention in this config
    arch.drop_layers(model, [3, 6])
    assert model.config.num_hidden_layers == 6 and len(model.config.layer_types) == 6
    assert [l.self_attn.layer_idx for l in model.model.layers] == list(range(6))
    expected = model.lm_head(model.model.norm(torch.cat(h)))
    torch.testing.assert_close(model(ids).logits, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        arch.drop_layers(model, [6])
