"""FuseGPT with group-local training (baselines.md §7) on a tiny model."""
import copy
import math

import pytest
import torch

from layerpuzzle.distill.fusegpt_train import FuseGPTTrainSettings, fusegpt_train
from layerpuzzle.distill.trainer import ResumeStore, StopHook, TrainingInterrupted, tensors_sha256
from layerpuzzle.methods.fusegpt import fusegpt_prune
from layerpuzzle.models.random_models import build_random_model

from training_probe import OptimizerProbe


SMALL = dict(rank=8, lora_rank=8, batch_size=2, mi_chunks=2, group_size=4)


def setup():
    dense, _ = build_random_model("llama", seed=0)
    chunks = torch.randint(0, 256, (6, 16), generator=torch.Generator().manual_seed(4))
    return dense, chunks


def test_without_training_equals_fusegpt_mi():
    """Zero-initialised fusion with 0 steps is an exact no-op: the same layers go as in FuseGPT-MI."""
    dense, chunks = setup()
    model = copy.deepcopy(dense)
    result, groups = fusegpt_train(model, chunks, 2, FuseGPTTrainSettings(steps=0, **SMALL), ResumeStore(None),
                                   progress=False)
    mi = copy.deepcopy(dense)
    ref = fusegpt_prune(mi, chunks[:2], 2, fuse=False, batch_size=2, device="cpu")
    assert result.details["removed_original"] == ref.removed_original
    assert groups == ref.groups
    msd, rsd = model.state_dict(), mi.state_dict()
    assert sorted(msd) == sorted(rsd)
    for k in rsd:
        torch.testing.assert_close(msd[k], rsd[k], rtol=0, atol=1e-6)


def test_training_lowers_the_group_loss_and_touches_only_the_group():
    dense, chunks = setup()
    model = copy.deepcopy(dense)
    settings = FuseGPTTrainSettings(epochs=3, steps=3, lr=1e-3, coef_lr=1e-2, **SMALL)
    result, groups = fusegpt_train(model, chunks, 1, settings, ResumeStore(None), progress=False)
    losses = result.phases[0].losses
    assert len(losses) == 9 and sum(losses[-3:]) < sum(losses[:3])  # same 3 batches per epoch, reshuffled
    it = result.details["iterations"][0]
    assert len(it["group_original"]) == 3 and it["removed_original"] not in it["group_original"]
    kept = [g[0] for g in groups]
    dsd, msd = dense.state_dict(), model.state_dict()
    for new, old in enumerate(kept):  # layers outside the group are bit-identical to the dense ones
        prefix = f"model.layers.{old}."
        for k, v in dsd.items():
            if k.startswith(prefix):
                same = torch.equal(msd[k.replace(prefix, f"model.layers.{new}.", 1)], v)
                assert same == (old not in it["group_original"] or "proj" not in k and "norm" not in k), k
    assert torch.equal(msd["model.embed_tokens.weight"], dsd["model.embed_tokens.weight"])
    assert result.budget.layers_per_iteration == 3 and result.budget.t_layer == 1 * 3 * 3 * 3 * 2 * 16


@pytest.mark.parametrize("stop_after, resumed, steps_run", [
    (3, [2, None], [4, 6]),      # killed inside iteration 0 (step 3; checkpoint at step 2)
    (9, [None, 2], [0, 4]),      # iteration 0 done (6 ticks: 5 steps + its end); killed at step 3 of iteration 1
])
def test_resume_inside_an_iteration_is_bit_identical(tmp_path, stop_after, resumed, steps_run):
    """A rerun replays finished iterations (no training) and resumes the interrupted one at its last checkpoint."""
    dense, chunks = setup()
    settings = FuseGPTTrainSettings(epochs=2, steps=3, coef_lr=1e-2, checkpoint_every=2, **SMALL)
    ref = copy.deepcopy(dense)
    fusegpt_train(ref, chunks, 2, settings, ResumeStore(None), progress=False)
    with pytest.raises(TrainingInterrupted):
        fusegpt_train(copy.deepcopy(dense), chunks, 2, settings, ResumeStore(tmp_path, {"t": 1}),
                      stop=StopHook(stop_after), progress=False)
    model = copy.deepcopy(dense)
    with OptimizerProbe() as probe:
        result, _ = fusegpt_train(model, chunks, 2, settings, ResumeStore(tmp_path, {"t": 1}), progress=False)
    assert [p.resumed_from for p in result.phases] == resumed
    assert [p.skipped for p in result.phases] == [resumed[0] is None, False]
    assert [p.steps_run for p in result.phases] == steps_run and len(probe.steps) == sum(steps_run)
    # the resumed iteration continues its CosineAnnealingLR (T_max = 6) at step 2: lr·½(1 + cos(π s/6)), s = 2..5
    first_resumed = probe.optimizers()[0]
    assert probe.lrs(first_resumed, 1) == pytest.approx(
        [1e-2 * 0.5 * (1 + math.cos(math.pi * s / 6)) for s in range(2, 6)], rel=1e-9)
    assert tensors_sha256(model.state_dict()) == tensors_sha256(ref.state_dict())
