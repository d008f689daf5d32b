"""Orders as artifacts, pruned checkpoints from orders, and the Table 4 layout against the paper's CSV."""
import copy
import json

import pandas as pd
import torch
from transformers import AutoModelForCausalLM

from layerpuzzle.methods.dlp.order_io import read_order, write_order
from layerpuzzle.methods.dlp.pipeline import calibration_notes, checkpoint_from_order, compute_order
from layerpuzzle.methods.dlp.removal import RemovalOrder
from layerpuzzle.tables.table4 import (
    OrderEntry,
    increments,
    order_entry,
    load_paper_orders,
    paper_order,
    table4_vs_paper,
    table4_wide,
)
from layerpuzzle.methods.fusegpt.removal_order import mi_removal_order
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.checkpoint import layers_to_remove
from layerpuzzle.models.random_models import build_random_model

SUBSTITUTE_META = {"id": "pg19-n256-s10-len512", "source_substitute": "True",
                   "source_note": "PG19 substitute (tinyshakespeare, one document): results are labelled 'PG19 substitute'"}


def test_order_parquet_round_trip(tmp_path):
    order = RemovalOrder(method="SLEB", n_layers=6, layers=[3, 1], scores=[10.5, 12.25],
                         info={"calibration": "wikitext2-n16-s10-len256", "notes": ["x"]})
    write_order(order, tmp_path / "o" / "order.parquet")
    back = read_order(tmp_path / "o" / "order.parquet")
    assert back == order
    df = pd.read_parquet(tmp_path / "o" / "order.parquet")
    assert list(df.columns) == ["rank", "layer", "score", "protected", "source"] and df.layer.tolist() == [3, 1]


def test_checkpoint_equals_drop_layers_of_dense(tmp_path):
    model, tok = build_random_model("qwen2", seed=3)
    dense = copy.deepcopy(model)
    order = compute_order("mag_plus", model, variant={"plus_heuristic": True}).order
    n = layers_to_remove(model.config, 0.25)
    assert n == 2
    facts = checkpoint_from_order(model, tok, order, tmp_path / "ckpt", target_fraction=0.25,
                                  base_model="random-qwen2", params={"plus_heuristic": True})
    assert facts["removed"] == order.layers[:2] and set(facts["removed"]) <= {4, 5}
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    reference = arch.drop_layers(dense, order.layers[:2])
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, reference(ids).logits, rtol=0, atol=0)
    rec = json.loads((tmp_path / "ckpt" / "pruning.json").read_text())
    assert rec["method"] == "Mag+" and rec["variant"] == "" and rec["removed_layers"] == 2
    assert rec["params"]["removed_layers"] == order.layers[:2]
    lmap = json.loads((tmp_path / "ckpt" / "layer_map.json").read_text())
    assert [e["teacher_layers"] for e in lmap] == [[i] for i in range(8) if i not in order.layers[:2]]
    saved = json.loads((tmp_path / "ckpt" / "removal_order.json").read_text())
    assert saved["order"] == order.layers


def test_pg19_substitute_is_labelled(tmp_path):
    model, tok = build_random_model("llama", seed=0)
    ids = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(0))
    res = compute_order("shortgpt", model, variant={"last_layer_output": "raw"},
                        settings={"max_windows": 3, "batch_size": 2}, calib=ids, calib_meta=SUBSTITUTE_META)
    assert res.order.info["calibration_windows_used"] == 3 and res.order.info["calibration_substitute"]
    checkpoint_from_order(model, tok, res.order, tmp_path / "ckpt", target_fraction=0.25, base_model="m")
    rec = json.loads((tmp_path / "ckpt" / "pruning.json").read_text())
    assert rec["method"] == "ShortGPT" and rec["variant"] == "PG19 substitute"
    assert "PG19 substitute" in rec["params"]["calibration_notes"][0]
    assert "PG19 substitute" in (tmp_path / "ckpt" / "README.md").read_text()
    assert calibration_notes({"id": "wikitext2-n8-s10-len64"}) == []


def test_sleb_order_serves_every_target_up_to_the_largest():
    model, _ = build_random_model("llama", seed=1)
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    res = compute_order("sleb", model, variant={"early_barrier": 1, "latter_barrier": 1},
                        settings={"batch_size": 2}, calib=ids, calib_meta={"id": "c"}, fractions=[0.1, 0.2, 0.3])
    assert len(res.order.layers) == 3 and len(res.candidates) == 6 + 5 + 4
    assert res.facts["layer_forwards"] > 0


def test_increments_and_paper_orders():
    assert increments([7, 6, 11, 8, 4, 10, 9, 12, 14, 13], [3, 7, 10]) == "7,6,11/8,4,10,9/12,14,13"
    paper = load_paper_orders()
    assert len(paper) == 105
    order, counts = paper_order(paper, "LLaMA-2-7B", "Mag+")
    assert increments(order, counts) == "7,6,11/8,4,10,9/12,14,13"
    order, counts = paper_order(paper, "Qwen3-4B", "SLEB")
    assert counts == [4, 8, 12] and order[4:8] == [18, 2, 19, 32]
    # Mag+/Taylor+ never pick layers 0-3 or the last two (the "+" heuristic), in every paper order
    for model, layers in [("LLaMA-2-7B", 32), ("LLaMA-2-13B", 40), ("Qwen2.5-7B", 28), ("Qwen3-4B", 36)]:
        for method in ("Mag+", "Taylor+"):
            o, _ = paper_order(paper, model, method)
            assert not set(o) & {0, 1, 2, 3, layers - 2, layers - 1}


def test_table4_layout_with_paper_beside_ours():
    ours = [7, 6, 11, 8, 4, 10, 9, 14, 12, 13]  # the last level differs in order only
    entries = [
        OrderEntry("llama2-7b", "Mag+", "Mag+", ours, [3, 7, 10], [9.01, 21.02, 30.03]),
        OrderEntry("llama2-7b", "SLEB", "SLEB", [14, 23, 11, 24, 10, 27, 15, 21, 25, 9], [3, 7, 10],
                   [9.01, 21.02, 30.03], note="SLEB: calibration wikitext2-n128-s10-len2048"),
        OrderEntry("tiny", "Mag+", "Mag+", [4, 5, 3], [1, 2, 3], [11.2, 22.5, 33.7]),
    ]
    wide = table4_wide(entries, {"llama2-7b": "LLaMA-2-7B", "tiny": None})
    assert list(wide.columns) == ["Method", "llama2-7b (9.0/21.0/30.0)", "LLaMA-2-7B paper (9.0/21.0/30.0)",
                                  "tiny (11.2/22.5/33.7)", "Note"]
    assert wide.Method.tolist() == ["Mag+", "SLEB"]
    mag = wide.iloc[0]
    assert mag["llama2-7b (9.0/21.0/30.0)"] == "7,6,11/8,4,10,9/14,12,13"
    assert mag["LLaMA-2-7B paper (9.0/21.0/30.0)"] == "7,6,11/8,4,10,9/12,14,13"
    assert mag["tiny (11.2/22.5/33.7)"] == "4/5/3"
    assert wide.iloc[1]["tiny (11.2/22.5/33.7)"] == "" and wide.iloc[1]["Note"].startswith("SLEB: calibration")
    vs = table4_vs_paper(entries, {"llama2-7b": "LLaMA-2-7B", "tiny": None})
    mag7 = vs[(vs.Model == "llama2-7b") & (vs.Method == "Mag+")]
    assert mag7["Same set"].tolist() == [True, True, True] and mag7["Same order"].tolist() == [True, True, False]
    sleb = vs[(vs.Model == "llama2-7b") & (vs.Method == "SLEB")]
    assert sleb["Same set"].tolist() == [True, True, False]  # 9 instead of 8 at the last level
    assert vs[vs.Model == "tiny"]["Paper"].tolist() == ["", "", ""]


def test_fusegpt_mi_order_from_its_record_and_partial_levels():
    """Original indices in removal order; score = MI of the removed layer on the stack of its iteration."""
    record = {"removed_original": [5, 2, 6], "iterations": [
        {"iteration": 1, "n_layers": 7, "removed_current": 2, "removed_original": 2,
         "macro_influence": [0.9, 0.5, 0.02, 0.3, 0.4, 0.6, 0.8]},
        {"iteration": 0, "n_layers": 8, "removed_current": 5, "removed_original": 5,
         "macro_influence": [0.9, 0.5, 0.4, 0.3, 0.2, 0.01, 0.1, 0.7]},
        {"iteration": 2, "n_layers": 6, "removed_current": 4, "removed_original": 6,
         "macro_influence": [0.9, 0.5, 0.3, 0.4, 0.05, 0.8]},
    ]}
    order = mi_removal_order(record)
    assert order.layers == [5, 2, 6] and order.scores == [0.01, 0.02, 0.05] and order.n_layers == 8
    model, _ = build_random_model("llama", seed=0)  # 8 layers
    full = order_entry("tiny", "FuseGPT-MI", "FuseGPT-MI", order, model.config, [0.1, 0.2, 0.3])
    counts = [layers_to_remove(model.config, f) for f in (0.1, 0.2, 0.3)]
    assert full.counts == counts and max(counts) <= 3 and not full.note
    short = RemovalOrder(method="FuseGPT-MI", n_layers=8, layers=[5], scores=[0.01])
    part = order_entry("tiny", "FuseGPT-MI", "FuseGPT-MI", short, model.config, [0.1, 0.2, 0.3])
    assert part.counts == [c for c in counts if c <= 1] and "only 1 layers removed" in part.note
