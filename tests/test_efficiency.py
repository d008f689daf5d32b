"""Efficiency records (LaCo Tables 5/20) on a tiny model: structure, token counts, ratios; never timings."""
import copy

import pytest
import torch

from layerpuzzle.evaluation.efficiency import efficiency_ratios, measure_efficiency, parameter_bytes
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import build_random_model

PROMPTS = [torch.tensor([256, 10, 20, 30]), torch.tensor([[256, 5, 6]])]


@pytest.fixture(scope="module")
def dense():
    model, _ = build_random_model("llama", seed=0)
    return model


def test_parameter_bytes(dense):
    assert parameter_bytes(dense) >= arch.count_parameters(dense) * 4  # fp32 params (+ rotary buffers)
    half = copy.deepcopy(dense).to(torch.bfloat16)
    assert parameter_bytes(half) < parameter_bytes(dense)


def test_record_structure_and_deterministic_tokens(dense):
    rec = measure_efficiency(dense, PROMPTS, new_tokens=5, warmup=1, label="dense")
    assert rec["device"] == "CPU" and rec["memory_kind"] == "cpu_params+peak_rss_delta"
    assert rec["generated_tokens"] == 10 and rec["n_prompts"] == 2 and rec["prompt_tokens"] == 7
    assert rec["tokens_per_s"] > 0 and rec["seconds"] > 0
    assert rec["memory_bytes"] >= rec["param_bytes"] > 0 and rec["peak_rss_delta_bytes"] >= 0
    assert rec["memory_mib"] == pytest.approx(rec["memory_bytes"] / 2 ** 20)
    assert rec["n_layers"] == 8 and rec["dtype"] == "float32" and rec["label"] == "dense"
    assert not dense.training
    again = measure_efficiency(dense, PROMPTS, new_tokens=5, warmup=0)
    assert again["generated_tokens"] == rec["generated_tokens"]


def test_ratios(dense):
    rec = measure_efficiency(dense, PROMPTS, new_tokens=3, warmup=0)
    same = efficiency_ratios(rec, rec)
    assert same["memory_ratio"] == same["speed_ratio"] == same["param_ratio"] == same["param_bytes_ratio"] == 1.0
    assert same["slower_than_dense"] is False
    pruned = copy.deepcopy(dense)
    arch.drop_layers(pruned, [6, 7])
    small = measure_efficiency(pruned, PROMPTS, new_tokens=3, warmup=0)
    r = efficiency_ratios(small, rec)
    assert r["param_ratio"] == pytest.approx(arch.count_parameters(pruned) / arch.count_parameters(dense))
    assert r["param_ratio"] < 1 and r["speed_ratio"] > 0
    assert r["slower_than_dense"] == (small["tokens_per_s"] < rec["tokens_per_s"])
    with pytest.raises(ValueError, match="new_tokens_per_prompt"):
        efficiency_ratios(measure_efficiency(pruned, PROMPTS, new_tokens=2, warmup=0), rec)


def test_invalid_arguments(dense):
    with pytest.raises(ValueError):
        measure_efficiency(dense, [], new_tokens=2)
    with pytest.raises(ValueError):
        measure_efficiency(dense, PROMPTS, new_tokens=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_record(dense):
    model = copy.deepcopy(dense).to("cuda")
    rec = measure_efficiency(model, PROMPTS, new_tokens=4, warmup=1)
    assert rec["device"] == "CUDA" and rec["memory_kind"] == "cuda_max_allocated"
    assert rec["memory_bytes"] >= rec["param_bytes"] and rec["generated_tokens"] == 8
