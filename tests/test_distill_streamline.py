"""LLM-Streamline: SBI windows, replacement by one layer initialised from the window's first layer, training."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.distill.streamline import (
    StreamlineSettings,
    replace_window,
    replaced_window_groups,
    streamline,
    window_sbi,
)
from layerpuzzle.distill.teacher_activations import teacher_states
from layerpuzzle.distill.trainer import ResumeStore, StopHook, TrainingInterrupted, tensors_sha256
from layerpuzzle.engine.runner import LayerwiseRunner
from layerpuzzle.models.random_models import build_random_model

from training_probe import OptimizerProbe


def setup(arch_name="llama"):
    dense, _ = build_random_model(arch_name, seed=0)
    chunks = torch.randint(0, 256, (12, 16), generator=torch.Generator().manual_seed(3))
    return dense, chunks


def test_window_sbi_matches_hf_hidden_states():
    dense, chunks = setup()
    n = 2
    sbi = window_sbi(dense, chunks, n, batch_size=5)
    assert sbi.shape == (8 - n,)
    hs = dense(chunks, output_hidden_states=True).hidden_states  # hs[k] = input of layer k for k < 8
    for j in range(8 - n - 1):  # the last window ends at hs[8], which HF returns final-normed
        cos = F.cosine_similarity(hs[j], hs[j + n + 1], dim=-1).detach()
        assert float(sbi[j]) == pytest.approx(1 - float(cos.mean()), abs=1e-5)


def test_replace_window_keeps_everything_else():
    dense, _ = build_random_model("qwen3", seed=0)
    model = replace_window(dense, 3, 2)
    assert model.config.num_hidden_layers == 6 and len(model.config.layer_types) == 6
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == list(range(6))
    dsd, msd = dense.state_dict(), model.state_dict()
    for j_new, j_old in enumerate([0, 1, 2, 3, 6, 7]):  # slot 3 = copy of layer 3 (the window's first)
        for k, v in dsd.items():
            if k.startswith(f"model.layers.{j_old}."):
                assert torch.equal(msd[k.replace(f"layers.{j_old}.", f"layers.{j_new}.", 1)], v)
    assert dense.config.num_hidden_layers == 8  # the dense model is untouched
    assert replaced_window_groups(8, 3, 2) == [[0], [1], [2], [3, 4, 5], [6], [7]]


@pytest.mark.parametrize("loss", ["mse", "lm"])
def test_streamline_trains_only_the_new_layer_and_keeps_the_best_state(loss):
    dense, chunks = setup()
    settings = StreamlineSettings(loss=loss, lr=3e-3, min_lr=3e-4, steps=10, batch_size=2, val_chunks=2,
                                  eval_every=3, sbi_chunks=4)
    model, result = streamline(dense, chunks, 2, settings, ResumeStore(None), progress=False)
    j = result.details["window"][0]
    assert result.details["window"] == [j, j + 2]
    assert int(torch.argmin(torch.tensor(result.details["sbi"]))) == j
    phase = result.phases[0]
    assert [s for s, _ in phase.val_losses] == [3, 6, 9, 10]
    best = min(phase.val_losses, key=lambda v: v[1])
    assert phase.best_step == best[0]
    # the returned model is the best-validation state: recompute its validation loss independently
    val = chunks[-2:]
    if loss == "lm":
        recomputed = float(model(val, labels=val).loss)
    else:
        states = teacher_states(dense, val, [j - 1 if j else -1, j + 2], progress=False)
        runner = LayerwiseRunner(model, val, batch_size=2, device="cpu")
        with torch.no_grad():
            out = runner.apply_layer(model.model.layers[j], states[j - 1 if j else -1], j)
        recomputed = float(F.mse_loss(out, states[j + 2]))
    assert recomputed == pytest.approx(best[1], rel=1e-5)
    untrained = replace_window(dense, j, 2)
    msd, usd = model.state_dict(), untrained.state_dict()
    changed = {k for k in msd if not torch.equal(msd[k], usd[k])}
    assert changed and all(k.startswith(f"model.layers.{j}.") for k in changed)
    assert result.budget.t_layer == 1 * 1 * 1 * 10 * 2 * 16


def test_streamline_resume_is_bit_identical(tmp_path):
    dense, chunks = setup()
    settings = StreamlineSettings(lr=3e-3, steps=8, batch_size=2, val_chunks=2, eval_every=3, checkpoint_every=3)
    ref, _ = streamline(dense, chunks, 2, settings, ResumeStore(None), progress=False)
    with pytest.raises(TrainingInterrupted):
        streamline(dense, chunks, 2, settings, ResumeStore(tmp_path, {"t": 1}), stop=StopHook(5), progress=False)
    with OptimizerProbe() as probe:
        model, result = streamline(dense, chunks, 2, settings, ResumeStore(tmp_path, {"t": 1}), progress=False)
    assert result.phases[0].resumed_from == 3
    assert len(probe.steps) == 5 and result.phases[0].steps_run == 5  # steps 3..7 only, not a restart
    # the LRs of steps 3..7 of the cosine with warmup round(0.01 × 8) = 0, from lr down to min_lr
    lr, lo = settings.lr, settings.min_lr
    assert probe.lrs(probe.optimizers()[0]) == pytest.approx(
        [lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(3, 8)], rel=1e-12)
    assert tensors_sha256(model.state_dict()) == tensors_sha256(ref.state_dict())


def short_run(dense, chunks, **settings):
    """Four steps of LLM-Streamline removing 2 layers of a copy of ``dense`` (settings override the defaults)."""
    settings = StreamlineSettings(**{"lr": 3e-3, "min_lr": 3e-4, "steps": 4, "batch_size": 2, "val_chunks": 2,
                                     "eval_every": 2, "sbi_chunks": 4, **settings})
    return streamline(copy.deepcopy(dense), chunks, 2, settings, ResumeStore(None), progress=False)


def test_streaming_teacher_gives_the_stored_result():
    """teacher='streaming' recomputes the dense states per batch: the same losses and weights as 'stored'."""
    dense, chunks = setup()
    runs = {}
    for teacher in ("stored", "streaming"):
        model, result = short_run(dense, chunks, teacher=teacher)
        runs[teacher] = (result.phases[0].losses, tensors_sha256(model.state_dict()))
    assert runs["stored"][0] == pytest.approx(runs["streaming"][0], rel=1e-5)
    assert runs["stored"][1] == runs["streaming"][1]


def test_released_schedule_barely_decays():
    from layerpuzzle.distill.streamline import schedule_length

    per_step = StreamlineSettings(steps=938, epochs=5, warmup_ratio=0.01)
    assert schedule_length(per_step) == (4690, 47)
    released = StreamlineSettings(steps=938, epochs=5, warmup_ratio=0.01, schedule="released", accumulation=16)
    total, warmup = schedule_length(released)
    assert (total, warmup) == (37520, 375)  # 4690 x 16 / 2 scheduler steps, 1 % warmup
    # after the 4690 optimiser steps the cosine is (4690 - 375) / (37520 - 375) = 11.6 % of the way down
    progress = (4690 - warmup) / (total - warmup)
    lr = 5e-5 + (2e-4 - 5e-5) * 0.5 * (1 + math.cos(math.pi * progress))
    assert 1.9e-4 < lr < 2e-4  # "LR barely decays from 2e-4 (min_lr 5e-5 never reached)"
    dense, chunks = setup()
    finals = {}
    for schedule in ("per_step", "released"):
        model, _ = short_run(dense, chunks, schedule=schedule)
        finals[schedule] = tensors_sha256(model.state_dict())
    assert finals["per_step"] != finals["released"]
