"""CoMe-sp / CoMe-mp hierarchical distillation on a tiny merged model (docs/methods/come_sp.md, docs/methods/come_mp.md)."""
import copy
import math

import pytest
import torch

from layerpuzzle.distill.come_mp import PAPER_LRS, MPSettings, distill_mp, fit_lrs
from layerpuzzle.distill.come_sp import SPSettings, distill_sp
from layerpuzzle.distill.hierarchical import distillation_pairs, student_outputs
from layerpuzzle.distill.losses import hidden_kl
from layerpuzzle.distill.teacher_activations import (
    StoredTeacher,
    StreamingTeacher,
    load_teacher,
    save_teacher,
    teacher_bytes,
    teacher_states,
)
from layerpuzzle.distill.trainer import ResumeStore, StopHook, TrainingInterrupted, tensors_sha256
from layerpuzzle.engine.runner import LayerwiseRunner
from layerpuzzle.methods.come import merge_window
from layerpuzzle.models.checkpoint import layer_map_from_groups
from layerpuzzle.models.random_models import build_random_model

from training_probe import OptimizerProbe


GROUPS = [[0], [1], [2, 3], [4], [5, 6], [7]]  # 8 -> 6 layers: student 2 = merge(2, 3), student 4 = merge(5, 6)


def merged_student(arch_name="llama"):
    """A dense random model and a CoMe-style student with two concatenation-merged layers."""
    dense, _ = build_random_model(arch_name, seed=0)
    student = copy.deepcopy(dense)
    g = torch.Generator().manual_seed(1)
    cfg = dense.config
    for start in (5, 2):  # merge the deeper window first so indices of the shallower one stay valid
        ffn = [torch.rand(cfg.intermediate_size, generator=g) for _ in range(2)]
        kv = [torch.rand(cfg.num_key_value_heads, generator=g) for _ in range(2)]
        merge_window(student, start, start + 1, [0.5, 0.5], ffn, kv)
    chunks = torch.randint(0, 256, (10, 16), generator=g)
    return dense, student, distillation_pairs(layer_map_from_groups(GROUPS)), chunks


def fixed_batch_loss(student, teacher, pairs, chunks, temperature=1.0):
    runner = LayerwiseRunner(student, chunks, batch_size=len(chunks), device=next(student.parameters()).device)
    with torch.no_grad():
        out = student_outputs(runner, chunks, [b for b, _ in pairs], grad_from=99)
    idx = torch.arange(len(chunks))
    return sum(float(hidden_kl(teacher.batch(idx)[a], out[b], temperature)) for b, a in pairs)


def test_distillation_pairs_from_layer_map():
    lmap = layer_map_from_groups(GROUPS)
    assert distillation_pairs(lmap) == [(2, 3), (4, 6)]
    shuffled = [lmap[4], lmap[0], lmap[2]]
    assert distillation_pairs(shuffled) == [(2, 3), (4, 6)]  # sorted by student index
    assert distillation_pairs(layer_map_from_groups([[0], [1, 2, 3], [4]])) == [(1, 3)]


def test_teacher_states_are_the_outputs_of_original_layers():
    dense, _, _, chunks = merged_student()
    states = teacher_states(dense, chunks, [-1, 0, 3, 6], batch_size=3, progress=False)
    hs = dense(chunks, output_hidden_states=True).hidden_states  # hs[k] = input of layer k (k < L)
    for a in (-1, 0, 3, 6):
        torch.testing.assert_close(states[a], hs[a + 1], rtol=0, atol=1e-5)
    assert teacher_bytes(160, 64, 2) == 160 * 64 * 2 * 4


def test_stored_and_streaming_teacher_agree(tmp_path):
    dense, _, pairs, chunks = merged_student()
    states = teacher_states(dense, chunks, [3, 6], batch_size=4, progress=False)
    save_teacher(tmp_path / "t.safetensors", states, chunks, {"model": "x"})
    stored = load_teacher(tmp_path / "t.safetensors", chunks)
    with pytest.raises(ValueError):
        load_teacher(tmp_path / "t.safetensors", chunks + 1)
    streaming = StreamingTeacher(dense, chunks, [3, 6])
    idx = torch.tensor([7, 2])
    for a in (3, 6):
        torch.testing.assert_close(streaming.batch(idx)[a], stored.batch(idx)[a], rtol=0, atol=1e-5)
    assert set(streaming.batch(idx, [3])) == {3}


@pytest.mark.parametrize("arch_name", ["llama", "qwen3"])
def test_come_sp_lowers_loss_and_changes_only_merged_layers(arch_name):
    dense, student, pairs, chunks = merged_student(arch_name)
    teacher = StoredTeacher(teacher_states(dense, chunks, [a for _, a in pairs], progress=False))
    before_state = {k: v.clone() for k, v in student.state_dict().items()}
    before = fixed_batch_loss(student, teacher, pairs, chunks[:4])
    result = distill_sp(student, chunks, teacher, pairs, SPSettings(lr=3e-3, steps=12), ResumeStore(None),
                        progress=False)
    after = fixed_batch_loss(student, teacher, pairs, chunks[:4])
    assert after < 0.9 * before
    assert len(result.phases[0].losses) == 12 and result.trained_layers == [2, 4]
    assert result.budget.as_dict() == {"iterations": 1, "layers_per_iteration": 2, "epochs": 1, "steps": 12,
                                       "batch_size": 2, "token_length": 16, "T_layer": 1 * 2 * 1 * 12 * 2 * 16}
    changed = {k for k, v in student.state_dict().items() if not torch.equal(v, before_state[k])}
    assert changed and all(k.startswith(("model.layers.2.", "model.layers.4.")) for k in changed)
    for k, v in student.state_dict().items():  # everything else is bit-identical
        if not k.startswith(("model.layers.2.", "model.layers.4.")):
            assert torch.equal(v, before_state[k]), k


def test_come_sp_first_loss_uses_the_temperature():
    """The loss of step 0 (before any update) is Σ_i KL at the configured τ on that step's batch."""
    dense, student, pairs, chunks = merged_student()
    teacher = StoredTeacher(teacher_states(dense, chunks, [a for _, a in pairs], progress=False))
    for tau in (1.0, 10.0):
        settings = SPSettings(lr=1e-3, steps=1, batch_size=10, temperature=tau)  # batch = all chunks
        result = distill_sp(copy.deepcopy(student), chunks, teacher, pairs, settings, ResumeStore(None),
                            progress=False)
        expected = fixed_batch_loss(student, teacher, pairs, chunks, temperature=tau)
        assert result.phases[0].losses[0] == pytest.approx(expected, rel=1e-4)
    assert fixed_batch_loss(student, teacher, pairs, chunks, 10.0) != pytest.approx(
        fixed_batch_loss(student, teacher, pairs, chunks, 1.0), rel=1e-2)


def test_come_mp_trains_layers_in_order_with_their_lrs():
    dense, student, pairs, chunks = merged_student()
    teacher = StoredTeacher(teacher_states(dense, chunks, [3, 6], progress=False))
    before_state = {k: v.clone() for k, v in student.state_dict().items()}
    before = fixed_batch_loss(student, teacher, pairs, chunks[:4])
    result = distill_mp(student, chunks, teacher, pairs, MPSettings(lrs=(3e-3, 1e-3), steps=10), ResumeStore(None),
                        progress=False)
    assert fixed_batch_loss(student, teacher, pairs, chunks[:4]) < 0.9 * before
    assert [p.name for p in result.phases] == ["layer002", "layer004"]
    assert result.details["lrs"] == [3e-3, 1e-3]
    assert result.budget.iterations == 2 and result.budget.layers_per_iteration == 1
    assert [name for name, _ in result.loss_curve()] == ["layer002"] * 10 + ["layer004"] * 10
    for k, v in student.state_dict().items():
        if not k.startswith(("model.layers.2.", "model.layers.4.")):
            assert torch.equal(v, before_state[k]), k


def test_come_mp_resume_after_interrupts_is_bit_identical(tmp_path):
    dense, student, pairs, chunks = merged_student()
    teacher = StoredTeacher(teacher_states(dense, chunks, [3, 6], progress=False))
    settings = MPSettings(lrs=(3e-3, 1e-3), steps=5, checkpoint_every=2)
    ref = copy.deepcopy(student)
    distill_mp(ref, chunks, teacher, pairs, settings, ResumeStore(None), progress=False)
    for stop_after in (3, 4, 2):  # inside phase 1; across the phase boundary; inside phase 2
        with pytest.raises(TrainingInterrupted):
            distill_mp(copy.deepcopy(student), chunks, teacher, pairs, settings, ResumeStore(tmp_path, {"t": 1}),
                       stop=StopHook(stop_after), progress=False)
    resumed = copy.deepcopy(student)
    with OptimizerProbe() as probe:
        result = distill_mp(resumed, chunks, teacher, pairs, settings, ResumeStore(tmp_path, {"t": 1}),
                            progress=False)
    assert result.phases[0].skipped and result.phases[1].resumed_from == 2
    # the rerun executed only the 3 steps left of layer 4 (5 − 2), with the LRs of steps 2..4 of its cosine
    assert len(probe.steps) == 3 and [p.steps_run for p in result.phases] == [0, 3]
    assert probe.lrs(probe.optimizers()[0]) == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * s / 5))
                                                              for s in (2, 3, 4)], rel=1e-12)
    assert tensors_sha256(resumed.state_dict()) == tensors_sha256(ref.state_dict())


def test_fit_lrs():
    llama = list(PAPER_LRS["LLaMA-2-7B"])
    assert fit_lrs(llama, 7) == llama
    assert fit_lrs([1e-3, 1e-5], 3) == pytest.approx([1e-3, 1e-4, 1e-5])  # log-linear: geometric middle
    five = fit_lrs(llama, 5)
    assert five[0] == 5e-4 and five[-1] == 1e-5 and all(x > y for x, y in zip(five, five[1:]))
    assert fit_lrs(llama, 1) == [5e-4]
    with pytest.raises(ValueError):
        fit_lrs([], 3)
