"""LLM-Streamline's released switches against independent re-implementations of the released training loops.

Each reference below is written from the released code's behaviour (RUCKBReasoning/LLM-Streamline,
``train_lightweightnetwork.py`` and ``train_llmloss.py``), not from our implementation: a plain loop of
AdamW steps, the released LR lambda, and the layer called as the released code calls it.
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.distill.data import BatchOrder
from layerpuzzle.distill.streamline import StreamlineSettings, replace_window, streamline
from layerpuzzle.distill.trainer import ResumeStore
from layerpuzzle.models.random_models import build_random_model

N_REMOVE = 2


def setup():
    dense, _ = build_random_model("llama", seed=0)
    chunks = torch.randint(0, 256, (12, 16), generator=torch.Generator().manual_seed(3))
    return dense, chunks


def released_lambda(s, warmup, total, lr, min_lr):
    """LLM-Streamline's scheduler.py lambda, transcribed: float warmup, no clamp of the progress."""
    if s < warmup:
        return float(s) / float(max(1, warmup))
    progress = float(s - warmup) / float(max(1, total - warmup))
    lam = max(0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return (min_lr + lam * (lr - min_lr)) / lr


def run_ours(dense, chunks, **kw):
    settings = StreamlineSettings(**{"lr": 3e-3, "min_lr": 3e-4, "steps": 6, "batch_size": 2, "val_chunks": 2,
                                     "eval_every": 2, "sbi_chunks": 4, "accumulation": 4, **kw})
    model, result = streamline(copy.deepcopy(dense), chunks, N_REMOVE, settings, ResumeStore(None), progress=False)
    return settings, model, result


def test_released_mse_loop_is_reproduced():
    """attention=released, keep=last, schedule=released equal the released MSE training loop.

    The released loop: a fresh layer loaded with layer j's weights, called as
    ``layer(hidden_states=x, position_ids=arange(S))`` under eager attention with no mask; MSE to the dense
    h[j+n+1]; clip 5; AdamW step; scheduler step once per optimiser step (T = M/2, w = 0.01·M/2); at the end
    ``load_state_dict(best_state_dict)`` where best_state_dict aliases the live parameters = the last state.
    """
    dense, chunks = setup()
    settings, ours, result = run_ours(dense, chunks, attention="released", keep="last", schedule="released")
    j = result.details["window"][0]
    phase = result.phases[0]
    assert phase.best_step is None and len(phase.val_losses) == 3  # validated, but the last state is kept

    # the reference: an eager copy of the dense model provides the layer, its rotary embedding and the targets
    eager = copy.deepcopy(dense)
    eager.config._attn_implementation = "eager"
    hs = {}  # hs[k] = input of dense layer k, hs[8] = raw output of the last layer (hooks: HF final-norms it)
    hooks = [layer.register_forward_hook(lambda _m, _a, out, k=k: hs.__setitem__(k + 1, out[0] if isinstance(
        out, tuple) else out)) for k, layer in enumerate(eager.model.layers)]
    with torch.no_grad():
        hs[0] = eager(chunks, output_hidden_states=True).hidden_states[0]
    for h in hooks:
        h.remove()
    layer = copy.deepcopy(eager.model.layers[j]).train()
    for p in layer.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(layer.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    micro = settings.epochs * settings.steps * settings.accumulation
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: released_lambda(
        s, micro * 0.01 * 0.5, micro * 0.5, settings.lr, settings.min_lr))
    order = BatchOrder(chunks.shape[0] - settings.val_chunks, settings.batch_size, settings.seed)
    pos = torch.arange(chunks.shape[1]).repeat(settings.batch_size, 1)
    for k in range(settings.steps):
        idx = order.indices(k)
        x, y = hs[j][idx], hs[j + N_REMOVE + 1][idx]
        out = layer(x, attention_mask=None, position_ids=pos,
                    position_embeddings=eager.model.rotary_emb(x, position_ids=pos))
        out = out[0] if isinstance(out, tuple) else out
        loss = F.mse_loss(out, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(layer.parameters(), max_norm=5)
        opt.step()
        sched.step()
        assert float(loss.detach()) == pytest.approx(phase.losses[k], rel=1e-4)
    for name, p in layer.named_parameters():
        torch.testing.assert_close(ours.model.layers[j].get_parameter(name), p.detach(), rtol=1e-4, atol=1e-6)


def test_released_attention_has_no_causal_mask():
    """Released attention = the eager layer without a mask: token 0's output depends on later tokens."""
    dense, chunks = setup()
    _, causal, rc = run_ours(dense, chunks, steps=1, lr=1e-12, min_lr=1e-13)
    _, released, rr = run_ours(dense, chunks, steps=1, lr=1e-12, min_lr=1e-13, attention="released")
    # the first token sees only itself under the causal mask, so its output is the same either way; later ones differ
    assert rc.phases[0].losses[0] != pytest.approx(rr.phases[0].losses[0], rel=1e-6)


def test_keep_last_differs_from_keep_best():
    dense, chunks = setup()
    _, best, rb = run_ours(dense, chunks, lr=3e-2, min_lr=3e-3)  # an LR high enough to overshoot
    _, last, rl = run_ours(dense, chunks, lr=3e-2, min_lr=3e-3, keep="last")
    assert rb.phases[0].best_step is not None and rb.phases[0].best_step != 6  # the best state is not the last
    assert rl.phases[0].best_step is None
    j = rb.details["window"][0]
    assert not torch.equal(best.model.layers[j].mlp.down_proj.weight, last.model.layers[j].mlp.down_proj.weight)


def test_released_lm_loop_is_reproduced():
    """loss=lm with betas (0.9, 0.95), grad_clip 0, schedule released equal the released LLM-loss loop.

    The released loop (accelerate, gradient_accumulation_steps = A): the scheduler is stepped every micro-batch
    (T = M/2, w = 0.01·M), the optimiser only every A-th one, so optimiser step k runs at λ(kA + A − 1); AdamW
    betas (0.9, 0.95), no clipping; the loss is the model's own next-token loss; only layer j trains.
    """
    dense, chunks = setup()
    settings, ours, result = run_ours(dense, chunks, loss="lm", betas=[0.9, 0.95], grad_clip=0.0,
                                      schedule="released", keep="last")
    j = result.details["window"][0]
    model = replace_window(dense, j, N_REMOVE)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(f"model.layers.{j}."))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.lr,
                            weight_decay=settings.weight_decay, betas=(0.9, 0.95))
    a = settings.accumulation
    micro = settings.epochs * settings.steps * a
    lrs = [settings.lr * released_lambda(m, micro * 0.01, micro * 0.5, settings.lr, settings.min_lr)
           for m in range(micro)]
    order = BatchOrder(chunks.shape[0] - settings.val_chunks, settings.batch_size, settings.seed)
    for k in range(settings.steps):
        for g in opt.param_groups:
            g["lr"] = lrs[k * a + a - 1]  # the LR in effect at the micro-batch that triggers the update
        ids = chunks[order.indices(k)]
        loss = model(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert float(loss.detach()) == pytest.approx(result.phases[0].losses[k], rel=1e-4)
    # the trajectory goes down to min_lr half-way and back up to lr by the end (no clamp of the progress)
    assert min(lrs[micro // 4:]) == pytest.approx(settings.min_lr, rel=1e-3) and lrs[-1] > 0.99 * settings.lr
    for name, p in model.model.layers[j].named_parameters():
        torch.testing.assert_close(ours.model.layers[j].get_parameter(name), p.detach(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("bad, message", [
    ({"attention": "none"}, "`attention`: value 'none' is not allowed; allowed: causal, released"),
    ({"keep": "first"}, "`keep`: value 'first' is not allowed; allowed: best, last"),
    ({"loss": "lm", "attention": "released"}, "`attention`: value 'released' is only for loss 'mse'"),
    ({"betas": [0.9, 1.5]}, "`betas`: value [0.9, 1.5] is not allowed"),
])
def test_bad_settings_fail_before_any_work(bad, message):
    dense, chunks = setup()
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_ours(dense, chunks, **bad)
