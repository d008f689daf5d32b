"""What CoMe-sp / CoMe-mp training actually does, observed from outside the trainers (tests/training_probe.py):
the learning rate every parameter group saw at every step, which parameters each optimiser held, the weight
decay (an independent AdamW replay of the recorded gradients), τ in the loss, the dtype of the master weights
and of the gradients on a bf16 model, and which tensors changed."""
import copy
import math

import pytest
import torch

from layerpuzzle.distill.come_mp import MPSettings, distill_mp
from layerpuzzle.distill.come_sp import SPSettings, distill_sp
from layerpuzzle.distill.teacher_activations import StoredTeacher, teacher_states
from layerpuzzle.distill.trainer import ResumeStore

from test_distill_come import fixed_batch_loss, merged_student
from training_probe import OptimizerProbe, adamw_replay, param_names

MERGED = ("model.layers.2.", "model.layers.4.")  # student layers 2 = merge(2, 3) and 4 = merge(5, 6)


def cosine(peak, total):
    """η_s = η·½(1 + cos(π s / T)), s = 0..T−1: no warmup, down to 0 (the schedule's defaults)."""
    return [peak * 0.5 * (1 + math.cos(math.pi * s / total)) for s in range(total)]


def setup(dtype=torch.float32):
    dense, student, pairs, chunks = merged_student()
    teacher = StoredTeacher(teacher_states(dense, chunks, [a for _, a in pairs], progress=False))
    return student.to(dtype), teacher, pairs, chunks


def layer_names(model, prefix):
    return sorted(n for n, _ in model.named_parameters() if n.startswith(prefix))


def check_adamw(records, lrs, weight_decay):
    """The recorded steps are AdamW with these LRs and this weight decay, and weight decay 0 would not match."""
    after = [t.double() for t in records[-1].after]
    replay = adamw_replay(records, lrs, weight_decay)
    no_decay = adamw_replay(records, lrs, 0.0)
    for a, r, z in zip(after, replay, no_decay):
        torch.testing.assert_close(a, r, rtol=2e-6, atol=1e-8)
    assert max(float((a - z).abs().max()) for a, z in zip(after, no_decay)) > 1e-6


def test_come_sp_one_optimizer_over_every_merged_layer_cosine_lr_and_adamw_decay():
    student, teacher, pairs, chunks = setup()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    names = param_names(student)
    settings = SPSettings(lr=2e-2, steps=6)
    with OptimizerProbe(keep=True) as probe:
        distill_sp(student, chunks, teacher, pairs, settings, ResumeStore(None), progress=False)
    assert len(probe.optimizers()) == 1 and len(probe.steps) == 6
    held = sorted(names[i] for i in probe.steps[0].groups[0].params)
    assert held == layer_names(student, MERGED[0]) + layer_names(student, MERGED[1])  # both merged layers, all
    assert probe.lrs(probe.optimizers()[0]) == pytest.approx(cosine(2e-2, 6), rel=1e-12, abs=1e-15)
    assert {g.weight_decay for s in probe.steps for g in s.groups} == {1e-2}
    check_adamw([s.groups[0] for s in probe.steps], cosine(2e-2, 6), 1e-2)
    after = student.state_dict()
    for k, v in after.items():  # every tensor of every merged layer moved; nothing else did
        assert torch.equal(v, before[k]) != k.startswith(MERGED), k


def test_come_mp_one_optimizer_per_layer_its_own_lr_and_cosine_shallow_to_deep():
    student, teacher, pairs, chunks = setup()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    names = param_names(student)
    lrs, steps = (2e-2, 5e-3), 5
    with OptimizerProbe(keep=True) as probe:
        result = distill_mp(student, chunks, teacher, pairs, MPSettings(lrs=lrs, steps=steps), ResumeStore(None),
                            progress=False)
    opts = probe.optimizers()
    assert len(opts) == 2 and len(probe.steps) == 2 * steps
    assert [s.optimizer for s in probe.steps] == [opts[0]] * steps + [opts[1]] * steps  # layer 2, then layer 4
    for k, (opt, prefix, lr) in enumerate(zip(opts, MERGED, lrs)):
        records = [s.groups[0] for s in probe.steps if s.optimizer == opt]
        # phase k trains b_k only (not b_1..b_k), at η_k with a cosine of its own over its `steps` steps
        assert all(sorted(names[i] for i in r.params) == layer_names(student, prefix) for r in records)
        assert probe.lrs(opt) == pytest.approx(cosine(lr, steps), rel=1e-12, abs=1e-15)
        assert {r.weight_decay for r in records} == {1e-2}
        check_adamw(records, cosine(lr, steps), 1e-2)
    assert result.details["lrs"] == list(lrs)
    after = student.state_dict()
    for k, v in after.items():
        assert torch.equal(v, before[k]) != k.startswith(MERGED), k


def test_come_mp_first_loss_uses_the_temperature():
    """Step 0 of layer 2 (before any update) is KL(σ(H_T^3/τ) ‖ σ(H_S^2/τ)) on its batch (all chunks here)."""
    student, teacher, pairs, chunks = setup()
    firsts = {}
    for tau in (1.0, 10.0):
        settings = MPSettings(lrs=(1e-3, 1e-3), steps=1, batch_size=10, temperature=tau)
        result = distill_mp(copy.deepcopy(student), chunks, teacher, pairs, settings, ResumeStore(None),
                            progress=False)
        firsts[tau] = result.phases[0].losses[0]
        assert firsts[tau] == pytest.approx(fixed_batch_loss(student, teacher, pairs[:1], chunks, tau), rel=1e-4)
    assert firsts[1.0] != pytest.approx(firsts[10.0], rel=1e-2)


@pytest.mark.parametrize("kind", ["sp", "mp"])
def test_bf16_model_trains_fp32_master_weights(kind):
    """On a bf16 model every optimiser step sees fp32 parameters and fp32 gradients; afterwards the model is bf16
    again, every merged tensor has moved, everything else is bit-identical."""
    student, teacher, pairs, chunks = setup(torch.bfloat16)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with OptimizerProbe(keep=True) as probe:
        if kind == "sp":
            distill_sp(student, chunks, teacher, pairs, SPSettings(lr=1e-2, steps=3), ResumeStore(None),
                       progress=False)
        else:
            distill_mp(student, chunks, teacher, pairs, MPSettings(lrs=(1e-2, 1e-2), steps=3), ResumeStore(None),
                       progress=False)
    assert len(probe.steps) == (3 if kind == "sp" else 6)
    for s in probe.steps:
        for g in s.groups:
            assert set(g.dtypes) == {torch.float32} and set(g.grad_dtypes) == {torch.float32}
            assert {t.dtype for t in g.after} == {torch.float32}
    after = student.state_dict()
    assert {v.dtype for v in after.values()} == {torch.bfloat16}
    for k, v in after.items():
        assert torch.equal(v, before[k]) != k.startswith(MERGED), k
