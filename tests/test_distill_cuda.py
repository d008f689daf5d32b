"""Post-training on a CUDA device (skipped without one): every method runs there, changes only its
trainable tensors, lowers its loss, and an interrupted run resumes to the same weights."""
import copy

import pytest
import torch

from layerpuzzle.distill.come_mp import MPSettings, distill_mp
from layerpuzzle.distill.come_sp import SPSettings, distill_sp
from layerpuzzle.distill.streamline import StreamlineSettings, streamline
from layerpuzzle.distill.teacher_activations import StoredTeacher, StreamingTeacher, teacher_states
from layerpuzzle.distill.trainer import ResumeStore, StopHook, TrainingInterrupted, tensors_sha256
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import build_random_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
PAIRS = [(2, 3), (4, 6)]


def models():
    dense, _ = build_random_model("qwen3", seed=0)
    dense = dense.cuda()
    student = copy.deepcopy(dense)
    arch.drop_layers(student, [3, 6])
    chunks = torch.randint(0, 256, (12, 32), generator=torch.Generator().manual_seed(0))
    return dense, student, chunks


@pytest.mark.parametrize("streaming", [False, True])
def test_come_sp_mp_on_cuda(tmp_path, streaming):
    dense, student, chunks = models()
    teacher = (StreamingTeacher(dense, chunks, [3, 6]) if streaming
               else StoredTeacher(teacher_states(dense, chunks, [3, 6], progress=False)))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    sp = copy.deepcopy(student)
    r = distill_sp(sp, chunks, teacher, PAIRS, SPSettings(lr=3e-3, steps=10), ResumeStore(None), progress=False)
    assert r.phases[0].losses[-1] < r.phases[0].losses[0]
    for k, v in sp.state_dict().items():
        assert torch.equal(v, before[k]) == (not k.startswith(("model.layers.2.", "model.layers.4."))), k
    settings = MPSettings(lrs=(3e-3, 1e-3), steps=5, checkpoint_every=2)
    ref = copy.deepcopy(student)
    distill_mp(ref, chunks, teacher, PAIRS, settings, ResumeStore(None), progress=False)
    with pytest.raises(TrainingInterrupted):
        distill_mp(copy.deepcopy(student), chunks, teacher, PAIRS, settings, ResumeStore(tmp_path, {}),
                   stop=StopHook(7), progress=False)
    resumed = copy.deepcopy(student)
    distill_mp(resumed, chunks, teacher, PAIRS, settings, ResumeStore(tmp_path, {}), progress=False)
    assert tensors_sha256(resumed.state_dict()) == tensors_sha256(ref.state_dict())


def test_streamline_and_fusegpt_on_cuda(tmp_path):
    dense, _, chunks = models()
    model, r = streamline(dense, chunks, 2, StreamlineSettings(lr=3e-3, steps=8, batch_size=2, val_chunks=2,
                                                               eval_every=4, sbi_chunks=4), ResumeStore(None),
                          progress=False)
    assert next(model.parameters()).is_cuda and r.phases[0].val_losses[-1][1] <= r.phases[0].val_losses[0][1]
    fusegpt = pytest.importorskip("layerpuzzle.distill.fusegpt_train")
    settings = fusegpt.FuseGPTTrainSettings(epochs=2, steps=2, rank=4, lora_rank=4, group_size=4, coef_lr=1e-2,
                                            checkpoint_every=3)
    ref = copy.deepcopy(dense)
    fusegpt.fusegpt_train(ref, chunks, 2, settings, ResumeStore(None), progress=False)
    with pytest.raises(TrainingInterrupted):
        fusegpt.fusegpt_train(copy.deepcopy(dense), chunks, 2, settings, ResumeStore(tmp_path, {}),
                              stop=StopHook(5), progress=False)
    resumed = copy.deepcopy(dense)
    fusegpt.fusegpt_train(resumed, chunks, 2, settings, ResumeStore(tmp_path, {}), progress=False)
    assert tensors_sha256(resumed.state_dict()) == tensors_sha256(ref.state_dict())
