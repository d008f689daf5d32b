"""The axis of σ in CoMe's Eq. 6 (`sigma_axis`): hidden dimension (default) or batch dimension (FuseGPT's KL)."""

import math

import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.distill.come_mp import MPSettings, distill_mp
from layerpuzzle.distill.come_sp import SPSettings, distill_sp
from layerpuzzle.distill.hierarchical import student_outputs
from layerpuzzle.distill.losses import hidden_kl
from layerpuzzle.distill.teacher_activations import StoredTeacher, teacher_states
from layerpuzzle.distill.trainer import ResumeStore
from layerpuzzle.engine.runner import LayerwiseRunner
from test_distill_come import merged_student
from test_distill_runs import workspace  # noqa: F401  (fixture)

LN3 = math.log(3.0)
# B = 2 sequences, S = 1 token, D = 3 hidden dims; the student is all zeros (uniform σ on either axis)
TEACHER = torch.tensor([[[0.0, LN3, 0.0]], [[0.0, 0.0, 0.0]]])
STUDENT = torch.zeros(2, 1, 3)
# hidden axis: token 0 has p = (1/5, 3/5, 1/5) against q = 1/3, token 1 is uniform (KL 0); mean over the 2 tokens
HIDDEN = (2 * 0.2 * math.log(0.2 * 3) + 0.6 * math.log(0.6 * 3)) / 2
# batch axis: only dim 1 differs across the batch, p = (3/4, 1/4) against q = 1/2; summed, divided by B = 2
BATCH = (0.75 * math.log(1.5) + 0.25 * math.log(0.5)) / 2


def test_hidden_axis_by_hand():
    assert float(hidden_kl(TEACHER, STUDENT)) == pytest.approx(HIDDEN, rel=1e-5)
    assert float(hidden_kl(2 * TEACHER, STUDENT, temperature=2.0)) == pytest.approx(HIDDEN, rel=1e-5)


def test_batch_axis_by_hand_and_equals_fusegpts_kl():
    assert HIDDEN != pytest.approx(BATCH, rel=1e-3)
    assert float(hidden_kl(TEACHER, STUDENT, axis="batch")) == pytest.approx(BATCH, rel=1e-5)
    assert float(hidden_kl(2 * TEACHER, STUDENT, temperature=2.0, axis="batch")) == pytest.approx(BATCH, rel=1e-5)
    t, s = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    fusegpt = F.kl_div(F.log_softmax(s, dim=0), F.softmax(t, dim=0), reduction="batchmean")
    assert float(hidden_kl(t, s, axis="batch")) == pytest.approx(float(fusegpt), rel=1e-5)


def test_bad_axis_is_refused():
    with pytest.raises(ValueError, match="sigma_axis: value 'token' is not allowed; allowed: hidden, batch"):
        hidden_kl(TEACHER, STUDENT, axis="token")
    dense, student, pairs, chunks = merged_student()
    teacher = StoredTeacher(teacher_states(dense, chunks, [a for _, a in pairs], progress=False))
    with pytest.raises(ValueError, match="sigma_axis: value 'token' is not allowed"):
        distill_sp(student, chunks, teacher, pairs, SPSettings(sigma_axis="token"), ResumeStore(None), progress=False)
    with pytest.raises(ValueError, match="sigma_axis: value 'token' is not allowed"):
        distill_mp(student, chunks, teacher, pairs, MPSettings(sigma_axis="token"), ResumeStore(None), progress=False)


@pytest.mark.parametrize("kind", ["sp", "mp"])
def test_distillation_optimises_the_chosen_axis(kind):
    """The first step's loss is Eq. 6 with σ over the batch: recomputed from the student's outputs on that batch."""
    dense, student, pairs, chunks = merged_student()
    teacher = StoredTeacher(teacher_states(dense, chunks, [a for _, a in pairs], progress=False))
    from layerpuzzle.distill.data import BatchOrder

    idx = BatchOrder(chunks.shape[0], 2, 10).indices(0)
    runner = LayerwiseRunner(student, chunks, batch_size=2, device="cpu")
    with torch.no_grad():
        out = student_outputs(runner, chunks[idx], [b for b, _ in pairs], grad_from=99)
    target = teacher.batch(idx)

    def by_hand(b, a):  # softmax over dim 0, sum, / B — written out, not through hidden_kl
        p, q = F.softmax(target[a], dim=0), F.softmax(out[b], dim=0)
        return float((p * (p.log() - q.log())).sum() / p.shape[0])

    if kind == "sp":
        result = distill_sp(student, chunks, teacher, pairs, SPSettings(steps=1, batch_size=2, sigma_axis="batch"),
                            ResumeStore(None), progress=False)
        assert result.phases[0].losses[0] == pytest.approx(sum(by_hand(b, a) for b, a in pairs), rel=1e-5)
    else:
        result = distill_mp(student, chunks, teacher, pairs, MPSettings(steps=1, batch_size=2, sigma_axis="batch"),
                            ResumeStore(None), progress=False)
        b, a = sorted(pairs)[0]  # the first phase trains the shallowest merged layer on the untouched student
        assert result.phases[0].losses[0] == pytest.approx(by_hand(b, a), rel=1e-5)


def test_loss_curve_is_labelled_as_what_it_plots():
    """CoMe's curves are the optimised KL, not the cross-entropy the paper's Fig. 12 plots: the axis says so."""
    from layerpuzzle.distill.hierarchical import DistillResult
    from layerpuzzle.posttrain_jobs import curve_ylabel
    from layerpuzzle.distill.t_layer import TrainingBudget

    budget = TrainingBudget(1, 1, 1, 1, 1, 1)
    assert curve_ylabel(DistillResult("CoMe-sp", [], budget, [])).startswith("KL (Eq. 6)")
    assert "not the CE of Fig. 12" in curve_ylabel(DistillResult("CoMe-mp", [], budget, []))
    assert curve_ylabel(DistillResult("LLM-Streamline", [], budget, [], {"loss": "mse"})) == "MSE"
    assert curve_ylabel(DistillResult("LLM-Streamline", [], budget, [], {"loss": "lm"})) == "next-token cross-entropy"


@pytest.mark.parametrize("axis", ["hidden", "batch"])
def test_kl_plus_teacher_entropy_is_the_cross_entropy(axis):
    """Fig. 12 plots the student-teacher cross-entropy −Σ p_T log p_S: KL + H(p_T), on the same scale."""
    from layerpuzzle.distill.losses import sigma_entropy

    t, s = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    dim = -1 if axis == "hidden" else 0
    p, log_q = F.softmax(t / 2, dim=dim), F.log_softmax(s / 2, dim=dim)
    ce = -(p * log_q)
    ce = ce.sum(-1).mean() if axis == "hidden" else ce.sum() / 3
    total = hidden_kl(t, s, 2.0, axis) + sigma_entropy(t, 2.0, axis)
    assert float(total) == pytest.approx(float(ce), rel=1e-5)


@pytest.mark.parametrize("kind", ["sp", "mp"])
def test_come_job_with_stored_teacher_records_and_plots_the_cross_entropy(workspace, kind):
    """loss_history.csv gets a cross_entropy column: each step's KL plus the entropy of that step's teacher batch."""
    import json

    from safetensors.torch import load_file

    from layerpuzzle.distill.data import BatchOrder
    from layerpuzzle.posttrain_jobs import run_come_job, run_teacher_job

    root, dense_dir, come_dir, data = workspace
    teacher = root / "results/m/teacher/t/activations.safetensors"
    run_teacher_job(dense_dir=str(dense_dir), data_path=str(data), student_dir=str(come_dir), out_path=str(teacher),
                    batch_size=4, dtype="float32", device="cpu", meta={"m": "m"})
    out = root / f"results/m/pruned/come_{kind}/sp25/v"
    variant = {"lr": 1e-3} if kind == "sp" else {"lrs": [1e-3, 5e-4]}
    run_come_job(kind, student_dir=str(come_dir), dense_dir=str(dense_dir), data_path=str(data),
                 teacher_path=str(teacher), out_dir=str(out), state_dir=str(root / "state"),
                 variant={**variant, "steps": 3, "batch_size": 2, "label": ""}, run_params={"data": {"n": 4}},
                 target_fraction=0.25, base_model="m", dtype="float32", device="cpu", checkpoint_every=2,
                 progress=False)
    lines = (out / "loss_history.csv").read_text().splitlines()
    assert lines[0] == "phase,phase_step,global_step,loss,cross_entropy"
    stored = load_file(str(teacher))
    layers = sorted(int(k.split(".")[1]) for k in stored if k.startswith("layer."))
    assert layers == [3, 6]
    assert len(lines) == 1 + (3 if kind == "sp" else 6)
    for row, line in enumerate(lines[1:]):
        kl, ce = (float(x) for x in line.split(",")[3:5])
        step = row if kind == "sp" else row % 3  # CoMe-mp: 3 steps for layer a = 3, then 3 for a = 6
        idx = BatchOrder(10, 2, 10).indices(step)
        entropy = 0.0
        for a in (layers if kind == "sp" else [layers[row // 3]]):
            # by hand: −Σ_d p log p per token, mean over tokens (CoMe-sp: summed over the merged layers)
            p = F.softmax(stored[f"layer.{a}"][idx].float(), dim=-1)
            entropy += float(-(p * p.log()).sum(-1).mean())
        assert ce == pytest.approx(kl + entropy, rel=1e-5)
    assert json.loads((out / "training.json").read_text())["teacher"] == "stored"
