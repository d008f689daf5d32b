"""Parameter counting (docs/sparsity.md) against the paper's Table 3 and real module sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from layerpuzzle.models.random_models import ARCHITECTURES, build_random_model
from layerpuzzle.sparsity import (
    ArchSpec,
    layer_params,
    remaining_params,
    removed_for_target,
    sparsity,
    specs_from_config,
    total_params,
)
from layerpuzzle.tables.paper import load_paper_sparsity
from layerpuzzle.tables.sparsity_table import printed_decimals

ROOT = Path(__file__).resolve().parents[1]
MODELS = {k: m for k, m in yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["models"].items()
          if m.get("source") != "derived"}  # derived models (re-pruning) are checkpoints, not paper models
SPECS = specs_from_config(MODELS)
PAPER_NAMES = {key: m["paper_name"] for key, m in MODELS.items()}

# The two Table 3 cells that the count does not reproduce (resources/paper/README.md).
DEVIATIONS = {("Vicuna-7B", 10): 9.0103, ("LLaMA-2-13B", 20): 19.4965}

SMOLLM2_135M = ArchSpec(
    hidden_size=576,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    head_dim=64,
    intermediate_size=1536,
    vocab_size=49152,
    tie_word_embeddings=True,
)


def test_smollm2_135m_total():
    # layer: 2·576·576 (q, o) + 2·576·192 (k, v) + 3·576·1536 + 2·576 = 3,540,096
    assert layer_params(SMOLLM2_135M) == 3_540_096
    # 30 layers + one tied 49152×576 embedding + final norm
    assert total_params(SMOLLM2_135M) == 30 * 3_540_096 + 49152 * 576 + 576 == 134_515_008


def test_hand_counted_layers():
    assert layer_params(SPECS["llama2-7b"]) == 4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096 == 202_383_360
    # Qwen2.5-7B: GQA 28/4 heads of 128 plus q/k/v biases (3584 + 2·512)
    q, kv = 3584 * 3584, 3584 * 512
    assert layer_params(SPECS["qwen2.5-7b"]) == 2 * q + 2 * kv + 3584 + 1024 + 3 * 3584 * 18944 + 2 * 3584
    # Qwen3-4B: q width 4096 ≠ hidden 2560, plus q_norm/k_norm (2·128)
    assert layer_params(SPECS["qwen3-4b"]) == 100_930_816
    assert total_params(SPECS["qwen3-4b"]) == 36 * 100_930_816 + 151936 * 2560 + 2560


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_count_equals_module_sizes(arch):
    model, _ = build_random_model(arch)
    spec = ArchSpec.from_hf_config(model.config)
    assert spec.qkv_bias == (arch == "qwen2")
    assert spec.qk_norm == (arch == "qwen3")
    assert spec.tie_word_embeddings == (arch == "qwen3")
    unique = {id(p): p.numel() for p in model.parameters()}  # tied weights counted once
    assert total_params(spec) == sum(unique.values())
    assert layer_params(spec) == sum(p.numel() for p in model.model.layers[0].parameters())
    # a config.json dict gives the same spec
    assert ArchSpec.from_hf_config(json.loads(model.config.to_json_string())) == spec


def test_from_hf_config_defaults():
    d = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 128, "vocab_size": 100}
    spec = ArchSpec.from_hf_config(d)
    assert (spec.num_key_value_heads, spec.head_dim, spec.tie_word_embeddings) == (4, 16, False)
    assert ArchSpec.from_hf_config({**d, "attention_bias": True}).qkv_bias
    with pytest.raises(ValueError):
        ArchSpec.from_hf_config({**d, "mlp_bias": True})
    with pytest.raises(ValueError):
        ArchSpec.from_dict({**d, "model_type": "llama"})


@pytest.mark.parametrize("row", load_paper_sparsity(as_text=True).to_dict("records"), ids=lambda r: f"{r['model']}-{r['target']}")
def test_table3_row(row):
    key = {v: k for k, v in PAPER_NAMES.items()}[row["model"]]
    spec = SPECS[key]
    target = int(row["target"])
    n = removed_for_target(spec, target)
    assert n == int(row["removed"])
    assert spec.num_hidden_layers == int(row["blocks"])
    pct = 100 * sparsity(spec, n)
    if (row["model"], target) in DEVIATIONS:
        assert pct == pytest.approx(DEVIATIONS[row["model"], target], abs=1e-4)
        assert round(pct, 2) != float(row["sparsity_pct"])
    else:
        assert round(pct, 2) == float(row["sparsity_pct"])
    for ours, printed in ((remaining_params(spec, n) / 1e9, row["params_b"]), (total_params(spec) / 1e9, row["size_b"])):
        assert round(ours, printed_decimals(printed)) == float(printed)


def test_removed_is_nearest_and_bounds():
    spec = SPECS["llama2-7b"]  # one layer = 3.0034 % of the parameters
    assert removed_for_target(spec, 0) == 0
    assert removed_for_target(spec, 4.5) == 1  # 3.00 is nearer than 6.01
    assert removed_for_target(spec, 4.6) == 2
    assert remaining_params(spec, 10) == total_params(spec) - 10 * 202_383_360
    with pytest.raises(ValueError):
        removed_for_target(spec, 100)
    with pytest.raises(ValueError):
        sparsity(spec, 33)
