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
    from layerpuzzle.distill.runs import curve_ylabel
    from layerpuzzle.distill.t_layer import TrainingBudget

    budget = TrainingBudget(1, 1, 1, 1, 1, 1)
    assert curve_ylabel(DistillResult("CoMe-sp", [], budget, [])).startswith("KL (Eq. 6)")
    assert "not the CE of Fig. 12" in curve_ylabel(DistillResult("CoMe-mp", [], budget, []))
    assert curve_ylabel(DistillResult("LLM-Streamline", [], budget, [], {"loss": "mse"})) == "MSE"
    assert curve_ylabel(DistillResult("LLM-Streamline", [], budget, [], {"loss": "lm"})) == "next-token cross-entropy"
