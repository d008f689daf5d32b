"""The resumable loop: schedules, RNG states, the store, and kill-and-resume = uninterrupted, bit for bit."""
import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from layerpuzzle.distill.trainer import (
    Phase,
    ResumeStore,
    StopHook,
    TrainingInterrupted,
    Validation,
    cosine_with_warmup,
    rng_state,
    run_phase,
    set_rng_state,
    tensors_sha256,
)

from conftest import REPO
from training_probe import OptimizerProbe


def test_cosine_with_warmup_factors():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = cosine_with_warmup(opt, total_steps=6, warmup_steps=2, min_lr_ratio=0.5)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # warmup 0/2, 1/2; then 0.5 + 0.5 * 0.5 * (1 + cos(pi * k / 4)), k = 0..3, times lr 2
    expected = [0.0, 1.0] + [2 * (0.5 + 0.25 * (1 + np.cos(np.pi * k / 4))) for k in range(4)]
    assert lrs == pytest.approx(expected)


def test_rng_state_roundtrip():
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_store_fingerprint_mismatch_discards_state(tmp_path):
    store = ResumeStore(tmp_path / "s", {"lr": 1})
    store.save("p", {"step": 3})
    assert ResumeStore(tmp_path / "s", {"lr": 1}).load("p") == {"step": 3}
    assert ResumeStore(tmp_path / "s", {"lr": 2}).load("p") is None
    store = ResumeStore(tmp_path / "s", {"lr": 2})
    store.finish("p", {"x": 1})
    assert store.load("p", "done") == {"x": 1} and store.load("p") is None
    store.clear()
    assert not (tmp_path / "s").exists()
    assert ResumeStore(None).load("p") is None  # no-op store


def test_code_version_hashes_the_package_sources(tmp_path, monkeypatch, caplog):
    """code_version = package version + sha256 over (relative path, bytes) of every package .py, reimplemented."""
    import hashlib

    import layerpuzzle
    from layerpuzzle.distill import trainer

    root = REPO / "src" / "layerpuzzle"
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    assert trainer.code_version() == {"package": layerpuzzle.__version__, "source_sha256": h.hexdigest()}
    store = ResumeStore(tmp_path / "s", {"dtype": "torch.float32", "device": "cpu"})
    store.save("p", {"step": 3})
    monkeypatch.setattr(trainer, "_CODE_VERSION", {"package": "9.9.9", "source_sha256": h.hexdigest()})
    with caplog.at_level("WARNING", logger="layerpuzzle.distill.trainer"):
        assert ResumeStore(tmp_path / "s", {"dtype": "torch.float32", "device": "cpu"}).load("p") is None
    assert "code.package: here '9.9.9', in the state '0.1.0'" in caplog.text


def toy_phase(seed=0, validation=False):
    """Least squares on fixed random data with AdamW, noisy (dropout-like) steps drawing from torch's RNG."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(32, 4, generator=g), torch.randn(32, 1, generator=g)
    lin = torch.nn.Linear(4, 1)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
    params = dict(lin.named_parameters())
    opt = torch.optim.AdamW(params.values(), lr=0.05, weight_decay=0.01)
    sched = cosine_with_warmup(opt, 12, 2)

    def step_loss(step):
        idx = torch.arange(step % 4 * 8, step % 4 * 8 + 8)
        mask = (torch.rand(8, 1) > 0.2).float()  # uses the global RNG: resume must restore it
        return ((lin(x[idx]) - y[idx]) ** 2 * mask).mean()

    val = Validation(lambda: float(((lin(x) - y) ** 2).mean()), every=3) if validation else None
    return Phase("toy", params, opt, sched, 12, step_loss, validation=val), lin


@pytest.mark.parametrize("validation", [False, True])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, validation):
    torch.manual_seed(5)
    phase, lin = toy_phase(validation=validation)
    ref = run_phase(phase, ResumeStore(None), checkpoint_every=4, progress=False)
    ref_sha = tensors_sha256(dict(lin.state_dict()))
    assert ref.losses[-1] < ref.losses[0]

    store_dir = tmp_path / "state"
    torch.manual_seed(5)
    for stop_after in (6, 5):  # stop at steps 6 (checkpoint 4) and 4+5 = 9 (checkpoint 8)
        phase, lin = toy_phase(validation=validation)
        with pytest.raises(TrainingInterrupted):
            run_phase(phase, ResumeStore(store_dir), checkpoint_every=4, stop=StopHook(stop_after), progress=False)
        torch.manual_seed(123)  # a restarted process has another RNG state: the checkpoint must restore it
    phase, lin = toy_phase(validation=validation)
    with OptimizerProbe() as probe:
        res = run_phase(phase, ResumeStore(store_dir), checkpoint_every=4, progress=False)
    assert res.resumed_from == 8 and res.steps_run == 4 and len(probe.steps) == 4
    # LRs of steps 8..11: warmup 2, then 0.05·½(1 + cos(π (s − 2)/10)) — the restored schedule, not a fresh one
    assert probe.lrs(probe.optimizers()[0]) == pytest.approx(
        [0.05 * 0.5 * (1 + np.cos(np.pi * (s - 2) / 10)) for s in range(8, 12)], rel=1e-12)
    assert res.losses == ref.losses
    assert res.val_losses == ref.val_losses and res.best_step == ref.best_step
    assert tensors_sha256(dict(lin.state_dict())) == ref_sha
    # a finished phase is skipped on the next run and its parameters loaded
    phase, lin = toy_phase(validation=validation)
    again = run_phase(phase, ResumeStore(store_dir), checkpoint_every=4, progress=False)
    assert again.skipped and tensors_sha256(dict(lin.state_dict())) == ref_sha


KILL_SCRIPT = textwrap.dedent(
    """
    import copy, hashlib, sys, torch
    from torch.optim.optimizer import register_optimizer_step_post_hook
    torch.set_num_threads(1)
    from layerpuzzle.models.random_models import build_random_model
    from layerpuzzle.distill.come_sp import SPSettings, distill_sp
    from layerpuzzle.distill.teacher_activations import StoredTeacher, teacher_states
    from layerpuzzle.distill.trainer import ResumeStore, StopHook, tensors_sha256
    from layerpuzzle.models import architecture as arch
    dense, _ = build_random_model("llama", seed=0)
    student = copy.deepcopy(dense)
    arch.drop_layers(student, [3, 6])          # student layers 2 and 4 stand for (2, 3) and (5, 6)
    pairs = [(2, 3), (4, 6)]
    chunks = torch.randint(0, 256, (8, 16), generator=torch.Generator().manual_seed(1))
    teacher = StoredTeacher(teacher_states(dense, chunks, [3, 6], progress=False))
    store = ResumeStore(sys.argv[1] if sys.argv[1] != "-" else None, {"test": 1})
    steps = []  # every optimiser step of this process, seen from outside the trainer
    register_optimizer_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    result = distill_sp(student, chunks, teacher, pairs, SPSettings(lr=1e-3, steps=9, checkpoint_every=3), store,
                        stop=StopHook.from_env(), progress=False)
    print("RESUMED_FROM", result.phases[0].resumed_from, "STEPS", len(steps))
    print("SHA", tensors_sha256(dict(student.state_dict())))
    """
)


def _run(script, arg, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env_extra or {})}
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
    assert (state / "come_sp.state.pt").exists()  # checkpoint of step 3 survived the kill
    saved = torch.load(state / "come_sp.state.pt", weights_only=True)
    assert saved["step"] == 3 and len(saved["losses"]) == 3
    resumed = _run(script, str(state))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "RESUMED_FROM 3 STEPS 6" in resumed.stdout  # it resumed at step 3 and ran steps 3..8, not 0..8
    assert resumed.stdout.split("SHA")[-1].strip() == ref
