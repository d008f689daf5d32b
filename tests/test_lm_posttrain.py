"""LM post-training (LaCo App. C): the first step is a hand-computed AdamW step, the loss falls, bf16 trains on
fp32 master weights, bad settings are refused, and a SIGKILLed run resumes to the same weights bit for bit."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from layerpuzzle.distill.lm_posttrain import LMPosttrainSettings, check_settings, lm_posttrain
from layerpuzzle.distill.losses import lm_loss
from layerpuzzle.distill.trainer import ResumeStore, tensors_sha256
from layerpuzzle.models.random_models import build_random_model

from training_probe import OptimizerProbe, adamw_replay

REPO = Path(__file__).resolve().parents[1]


def chunks(n=8, s=16, seed=1):
    return torch.randint(0, 256, (n, s), generator=torch.Generator().manual_seed(seed))


def test_first_step_is_a_hand_computed_adamw_step_with_clipping():
    model, _ = build_random_model("llama", seed=0)
    data = chunks()
    ref = {n: p.detach().clone() for n, p in model.named_parameters()}
    s = LMPosttrainSettings(lr=1e-3, steps=4, batch_size=2, warmup_steps=1, weight_decay=0.1, grad_clip=0.5)
    with OptimizerProbe(keep=True) as probe:
        res = lm_posttrain(model, data, s, ResumeStore(None), progress=False)
    rec = probe.steps[1].groups[0]  # step 0 has lr 0 (warmup 1): check the second, then the first by replay
    assert probe.lrs(probe.optimizers()[0]) == pytest.approx([0.0, 1e-3, 1e-3 * 0.75, 1e-3 * 0.25])
    # every parameter is trainable (tied weights once)
    assert len(rec.params) == len(list(model.parameters()))
    # the gradient of step 0 is the clipped gradient of the LM loss on batch 0, computed here by hand
    from layerpuzzle.distill.data import BatchOrder

    fresh, _ = build_random_model("llama", seed=0)
    ids = data[BatchOrder(8, 2, 10).indices(0)]
    loss = lm_loss(fresh(input_ids=ids).logits, ids)
    assert float(loss.detach()) == pytest.approx(res.phases[0].losses[0], rel=1e-6)
    loss.backward()
    grads = [p.grad for p in fresh.parameters()]
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    assert float(norm) > 0.5  # the clip is active
    clipped = [g * (0.5 / (float(norm) + 1e-6)) for g in grads]
    for g_probe, g_hand in zip(probe.steps[0].groups[0].grads, clipped):
        torch.testing.assert_close(g_probe, g_hand, rtol=1e-4, atol=1e-7)
    # AdamW replayed (lr 0 then 1e-3, weight decay 0.1, betas 0.9/0.95) = the trainer's parameters after step 1
    theta = adamw_replay([probe.steps[0].groups[0], rec], [0.0, 1e-3], 0.1, betas=(0.9, 0.95))
    for t, after in zip(theta, rec.after):
        torch.testing.assert_close(t.float(), after, rtol=1e-5, atol=1e-6)
    assert not torch.equal(rec.after[0], ref[next(iter(ref))])


def test_loss_decreases_on_repeated_data():
    model, _ = build_random_model("llama", seed=0)
    res = lm_posttrain(model, chunks(n=4), LMPosttrainSettings(lr=3e-3, steps=20, batch_size=4), ResumeStore(None),
                       progress=False)
    losses = res.phases[0].losses
    assert losses[-1] < 0.8 * losses[0]
    assert res.details["tokens_seen"] == 20 * 4 * 16
    assert not any(p.requires_grad for p in model.parameters())


def test_bf16_model_trains_on_fp32_master_weights_and_returns_bf16():
    model, _ = build_random_model("qwen3", seed=0)  # tied embeddings
    model.to(torch.bfloat16)
    with OptimizerProbe() as probe:
        lm_posttrain(model, chunks(), LMPosttrainSettings(lr=1e-5, steps=2, batch_size=2), ResumeStore(None),
                     progress=False)
    assert {d for s in probe.steps for d in s.groups[0].dtypes} == {torch.float32}
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight


@pytest.mark.parametrize("bad", [dict(lr=0), dict(steps=0), dict(warmup_steps=5, steps=5), dict(betas=(0.9, 1.0)),
                                 dict(grad_clip=0), dict(batch_size=0)])
def test_bad_settings_are_refused_naming_the_setting(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"`{name}`.*allowed"):
        check_settings(LMPosttrainSettings(**bad))


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from torch.optim.optimizer import register_optimizer_step_post_hook
    torch.set_num_threads(1)
    from layerpuzzle.models.random_models import build_random_model
    from layerpuzzle.distill.lm_posttrain import LMPosttrainSettings, lm_posttrain
    from layerpuzzle.distill.trainer import ResumeStore, StopHook, tensors_sha256
    model, _ = build_random_model("llama", seed=0)
    chunks = torch.randint(0, 256, (8, 16), generator=torch.Generator().manual_seed(1))
    store = ResumeStore(sys.argv[1] if sys.argv[1] != "-" else None, {"test": 1})
    steps = []
    register_optimizer_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    res = lm_posttrain(model, chunks, LMPosttrainSettings(lr=1e-3, steps=9, batch_size=2, warmup_steps=2,
                                                          checkpoint_every=3), store, stop=StopHook.from_env(),
                       progress=False)
    print("RESUMED_FROM", res.phases[0].resumed_from, "STEPS", len(steps))
    print("SHA", tensors_sha256(dict(model.state_dict())))
    """
)


def _run(script, arg, env_extra=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("LAYERPUZZLE_STOP_AFTER_STEPS", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(script), arg], capture_output=True, text=True, env=env, timeout=300)


def test_sigkill_then_rerun_resumes_to_the_same_weights(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    full = _run(script, "-")
    assert full.returncode == 0, full.stderr[-2000:]
    assert "RESUMED_FROM None STEPS 9" in full.stdout
    ref = full.stdout.split("SHA")[-1].strip()

    state = tmp_path / "state"
    killed = _run(script, str(state), {"LAYERPUZZLE_STOP_AFTER_STEPS": "5:kill"})
    assert killed.returncode == -signal.SIGKILL
    saved = torch.load(state / "lm_posttrain.state.pt", weights_only=True)
    assert saved["step"] == 3 and len(saved["losses"]) == 3
    resumed = _run(script, str(state))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "RESUMED_FROM 3 STEPS 6" in resumed.stdout
    assert resumed.stdout.split("SHA")[-1].strip() == ref


def test_posttraining_an_uneven_width_checkpoint_keeps_its_shapes(tmp_path):
    """An LLM-Pruner checkpoint (uneven layer widths) is post-trained and saved so the same loader rebuilds it."""
    from layerpuzzle.data.calibration import save_calibration
    from layerpuzzle.methods.llm_pruner.pipeline import run_llm_pruner
    from layerpuzzle.models.sources import load_model
    from layerpuzzle.models.uneven import read_record
    from layerpuzzle.posttrain_jobs import run_lm_posttrain_job

    model, tok = build_random_model("llama", seed=0)
    dense = tmp_path / "dense"
    model.save_pretrained(dense)
    tok.save_pretrained(dense)
    calib = tmp_path / "calib.safetensors"
    save_calibration(calib, chunks(n=4, s=16), {"note": "test"})
    pruned = tmp_path / "pruned"
    run_llm_pruner(str(dense), str(calib), str(pruned), model_name="random", target_fraction=0.2,
                   variant={"layers": [1, 7], "mlp_layers": [1, 7]}, calibration={"dataset": "test", "seed": 0},
                   dtype="float32", device="cpu")
    out = tmp_path / "posttrained"
    res = run_lm_posttrain_job(source_dir=str(pruned), data_path=str(calib), out_dir=str(out),
                               state_dir=str(tmp_path / "state"), variant={"lr": 1e-3, "steps": 3, "batch_size": 2},
                               run_params={"data": {}}, base_model="random", source_id="llm_pruner/sp20/default",
                               slug="x", dtype="float32", device="cpu", checkpoint_every=2, progress=False)
    assert res["tokens_seen"] == 3 * 2 * 16
    assert read_record(out)["layers"] == read_record(pruned)["layers"]
    before, _ = load_model(pruned)
    after, _ = load_model(out)
    shapes = {n: tuple(p.shape) for n, p in before.named_parameters()}
    assert {n: tuple(p.shape) for n, p in after.named_parameters()} == shapes
    changed = [n for n, p in after.named_parameters() if not torch.equal(p, dict(before.named_parameters())[n])]
    assert len(changed) == len(shapes)  # every parameter was trained
    pruning = json.loads((out / "pruning.json").read_text())
    assert pruning["sparsity_pct"] == json.loads((pruned / "pruning.json").read_text())["sparsity_pct"]
    assert pruning["posttrain"]["source"] == "llm_pruner/sp20/default"
    assert (out / "loss_curve.png").is_file() and not (tmp_path / "state").exists()
