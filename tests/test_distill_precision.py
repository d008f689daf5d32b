"""fp32 master weights for trained layers of a bf16 model (distill.precision)."""
import copy

import torch

from layerpuzzle.distill.precision import fp32_trainable
from layerpuzzle.distill.streamline import StreamlineSettings, streamline
from layerpuzzle.distill.trainer import ResumeStore
from layerpuzzle.models.random_models import build_random_model


def bf16_model():
    model, _ = build_random_model("llama", seed=0)
    return model.to(torch.bfloat16).eval()


def test_bf16_weights_lose_small_updates_fp32_master_keeps_them():
    w = torch.full((64,), 0.02, dtype=torch.bfloat16)
    assert torch.equal(w + 1e-5, w)  # the update is below bf16 resolution near 0.02
    model = bf16_model()
    layer = model.model.layers[2]
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(1))
    with fp32_trainable(model, [layer]):
        assert all(p.dtype == torch.float32 for p in layer.parameters())
        assert model.model.layers[1].self_attn.q_proj.weight.dtype == torch.bfloat16
        weight = layer.mlp.down_proj.weight
        before = weight.detach().clone()
        opt = torch.optim.AdamW([weight], lr=1e-5, weight_decay=0.0)
        logits = model(ids).logits
        assert logits.dtype == torch.bfloat16  # the frozen bf16 layers after it see bf16 again
        logits.float().pow(2).mean().backward()
        opt.step()
        changed = (weight.detach() != before).float().mean()
        assert changed > 0.99  # Adam moves every entry by ~lr: all of them survive in fp32
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


def test_fp32_model_is_left_alone():
    model, _ = build_random_model("llama", seed=0)
    layer = model.model.layers[2]
    with fp32_trainable(model, [layer]):
        assert not layer._forward_pre_hooks and not layer._forward_hooks


def test_streamline_on_a_bf16_model_trains_its_layer():
    """fp32 teacher states go into the bf16 model's new layer (used to fail with a dtype mismatch)."""
    dense = bf16_model()
    chunks = torch.randint(0, 256, (8, 16), generator=torch.Generator().manual_seed(3))
    settings = StreamlineSettings(lr=3e-3, min_lr=3e-4, steps=4, batch_size=2, val_chunks=2, eval_every=2,
                                  sbi_chunks=4)
    model, result = streamline(copy.deepcopy(dense), chunks, 2, settings, ResumeStore(None), progress=False)
    j = result.details["window"][0]
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert not torch.equal(model.model.layers[j].mlp.down_proj.weight, dense.model.layers[j].mlp.down_proj.weight)
    assert len(result.phases[0].losses) == 4
