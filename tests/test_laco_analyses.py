"""LaCo Fig. 4 (adjacent weight distances) and Fig. 5b (merged layer vs the group's last layer)."""
import math

import pytest
import torch
from safetensors.torch import save_file

from layerpuzzle.engine.block_influence import block_influence
from layerpuzzle.engine.hidden_states import collect_hidden_states
from layerpuzzle.engine.weight_distances import CheckpointWeights, adjacent_weight_distances, num_layers_in
from layerpuzzle.methods.laco.merge_similarity import groups_within, merged_layer_cosine
from layerpuzzle.models.random_models import build_random_model


def _toy_weights():
    w = {}
    for l, v in enumerate((0.0, 1.0, 3.0)):
        w[f"model.layers.{l}.self_attn.q_proj.weight"] = torch.full((2, 2), v)  # ‖ΔW‖_F = 2|Δv|
        w[f"model.layers.{l}.mlp.down_proj.weight"] = torch.tensor([[v, 0.0, 0.0]])
    return w


def test_adjacent_weight_distances_hand_computed(tmp_path):
    w = _toy_weights()
    rows = adjacent_weight_distances(w, ["self_attn.q_proj", "mlp.down_proj"])
    got = {(r["projection"], r["layer"]): r["frobenius"] for r in rows}
    assert got == pytest.approx({("q_proj", 0): 2.0, ("q_proj", 1): 4.0, ("down_proj", 0): 1.0, ("down_proj", 1): 2.0})
    rel = {(r["projection"], r["layer"]): r["relative"] for r in rows}
    assert math.isnan(rel[("q_proj", 0)]) and rel[("q_proj", 1)] == pytest.approx(2.0)
    # the same from sharded safetensors files, read lazily
    items = sorted(w.items())
    save_file(dict(items[:3]), str(tmp_path / "a.safetensors"))
    save_file(dict(items[3:]), str(tmp_path / "b.safetensors"))
    ck = CheckpointWeights(tmp_path)
    assert len(ck) == 6 and num_layers_in(ck, "self_attn.q_proj") == 3
    lazy = adjacent_weight_distances(ck, ["self_attn.q_proj", "mlp.down_proj"])
    assert [r["frobenius"] for r in lazy] == [r["frobenius"] for r in rows]


def test_adjacent_weight_distances_on_a_model():
    model, _ = build_random_model("qwen2", seed=0)
    rows = adjacent_weight_distances(model.state_dict())
    assert len(rows) == 5 * 7 and {r["projection"] for r in rows} == {"q_proj", "k_proj", "v_proj", "up_proj", "down_proj"}
    sd = model.state_dict()
    expected = (sd["model.layers.4.mlp.up_proj.weight"] - sd["model.layers.3.mlp.up_proj.weight"]).norm()
    (r,) = [r for r in rows if r["projection"] == "up_proj" and r["layer"] == 3]
    assert r["frobenius"] == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        adjacent_weight_distances({})


def test_groups_within_laco_fig5b():
    assert groups_within(9, 18, 4) == [9, 10, 11, 12, 13, 14, 15]  # layers 10-19, 1-based
    assert groups_within(0, 3, 4) == [0]


def test_merged_layer_cosine():
    model, _ = build_random_model("llama", seed=5)
    ids = [torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(n)) for n in (6, 11)]
    rows = merged_layer_cosine(model, ids, [1, 4], group_size=4)
    states = collect_hidden_states(model, ids)
    assert [r["start"] for r in rows] == [1, 4] and rows[1]["last"] == 7 and rows[0]["n_tokens"] == 17
    assert rows[0]["skip_cosine"] == pytest.approx(1 - block_influence(states[1], states[5]))
    assert all(-1 <= r["merged_cosine"] <= 1 for r in rows)
    # a group of one: RDSC returns the layer itself, so its output is h[s+1] exactly
    (one,) = merged_layer_cosine(model, ids, [2], group_size=1)
    assert one["merged_cosine"] == pytest.approx(1.0, abs=1e-6)
    # "released": the merged layer has the last layer's projections (norms of the first)
    rel = merged_layer_cosine(model, ids, [4], group_size=4, variant="released")
    assert rel[0]["merged_cosine"] != pytest.approx(rows[1]["merged_cosine"])
    with pytest.raises(ValueError, match="do not fit"):
        merged_layer_cosine(model, ids, [6], group_size=4)
