"""FuseGPT with group-local training (docs/methods/fusegpt_train.md) on a tiny model."""
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


# ---------------------------------------------------------------- released-code switches
def test_fixed_batches_are_the_released_epoch_loop():
    """Fuser.update: for epoch in range(E): for j in range(n_batchs): batch j = windows [8j, 8j+8) (in sampling order)."""
    from layerpuzzle.distill.data import FixedBatches

    n, bs, epochs = 6, 2, 3
    inps = torch.arange(n).view(n // bs, bs)  # fusion_sequential's (nsamples/8, 8, ...) layout, window ids only
    released = [inps[j].tolist() for _ in range(epochs) for j in range(inps.shape[0])]
    order = FixedBatches(n, bs)
    assert [order.indices(s).tolist() for s in range(epochs * order.n_batches)] == released
    with pytest.raises(ValueError, match="batch_size <= n_chunks"):
        FixedBatches(1, 2)


def test_fusegpt_train_uses_the_fixed_batches_and_the_released_settings(monkeypatch):
    import layerpuzzle.distill.fusegpt_train as ft

    seen = []

    class Recording(ft.FixedBatches):
        def indices(self, step):
            out = super().indices(step)
            seen.append(out.tolist())
            return out

    monkeypatch.setattr(ft, "FixedBatches", Recording)
    dense, chunks = setup()
    settings = FuseGPTTrainSettings(epochs=2, steps=3, batch_order="fixed", mi_precision="bfloat16",
                                    bias_fusion="released", **SMALL)
    result, _ = fusegpt_train(copy.deepcopy(dense), chunks, 1, settings, ResumeStore(None), progress=False)
    assert seen == [[0, 1], [2, 3], [4, 5]] * 2
    assert len(result.phases[0].losses) == 6
    for bad, key in (({"batch_order": "random"}, "batch_order"), ({"bias_fusion": "last"}, "bias_fusion"),
                     ({"mi_precision": "fp16"}, "mi_precision")):
        with pytest.raises(ValueError, match=f"`{key}`: value '.*' is not allowed"):
            FuseGPTTrainSettings(**bad)


def test_released_bias_fusion_trains_the_base_bias_and_one_coefficient():
    """Released Fuser.update trains every parameter of the group except W_t: with biases that includes b_t
    (at lr) and the single fuse_coef_b (at coef_lr)."""
    from layerpuzzle.distill.fusegpt_train import group_parameters
    from layerpuzzle.methods.fusegpt import fuse_group

    for mode, has_bias, coef_b in (("released", True, "coef_b_last"), ("sum", False, "coef_b.0")):
        model, _ = build_random_model("qwen2", seed=1)
        g = fuse_group(model, 3, rank=4, lora_rank=4, group_size=4, bias_fusion=mode)
        lora, coef = group_parameters(model, g.start, g.stop)
        assert ("model.layers.1.self_attn.q_proj.bias" in lora) == has_bias
        assert "model.layers.1.self_attn.o_proj.bias" not in lora  # o_proj has no bias
        assert f"model.layers.1.self_attn.q_proj.{coef_b}" in coef


def test_random_window_training_data_is_a_calibration_set(tmp_path):
    """data_sampling random_windows: the training chunks are FuseGPT's random windows (in sampling order), built by
    rule calibration_set like every calibration set (id suffix -rw); a set it cannot sample is refused before
    anything is scheduled."""
    import yaml
    from workflow_utils import scheduled_jobs, snakemake, tiny_config

    cfg = tiny_config(tmp_path, enable=("fusegpt_train",))
    raw = yaml.safe_load(cfg.read_text())
    variant = {"targets": [0.25], "steps": 1, "batch_size": 2, "rank": 4, "lora_rank": 4, "batch_order": "fixed",
               "mi_precision": "bfloat16"}
    raw["methods"]["fusegpt_train"].update(data_sampling="random_windows", variants=[variant],
                                           data={"dataset": "wikitext2", "n": 6, "seed": 10, "seq_len": 16})
    cfg.write_text(yaml.safe_dump(raw))
    res = snakemake(tmp_path, cfg, "-n", "all_evaluations")
    jobs = scheduled_jobs(res.stdout + res.stderr)
    assert jobs.get("calibration_set") == 1, jobs
    assert "calib/wikitext2-n6-s10-len16-rw.safetensors" in res.stdout + res.stderr
    raw["methods"]["fusegpt_train"]["data"].update(dataset="mmlu", selection="per_subject")
    cfg.write_text(yaml.safe_dump(raw))
    res = snakemake(tmp_path, cfg, "-n", "all_evaluations", check=False)
    assert res.returncode != 0
    assert "`methods.fusegpt_train.data_sampling`: value 'random_windows'" in res.stdout + res.stderr
    assert "selection 'global'" in res.stdout + res.stderr
