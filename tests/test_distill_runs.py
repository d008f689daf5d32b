"""The post-training jobs end to end on disk (no Snakemake): checkpoints, training.json, tables."""
import copy
import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from layerpuzzle.data.calibration import save_calibration
from layerpuzzle.posttrain_jobs import run_come_job, run_fusegpt_job, run_streamline_job, run_teacher_job
from layerpuzzle.tables.posttrain import posttrain_table, table7, training_info
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.checkpoint import save_pruned
from layerpuzzle.models.random_models import build_random_model

from conftest import REPO


@pytest.fixture()
def workspace(tmp_path):
    """results/m/dense, a CoMe-like checkpoint results/m/pruned/come/sp25/v and a chunk file."""
    dense, tok = build_random_model("llama", seed=0)
    dense_dir = tmp_path / "results/m/dense"
    dense.save_pretrained(dense_dir)
    tok.save_pretrained(dense_dir)
    student = copy.deepcopy(dense)
    arch.drop_layers(student, [3, 6])
    come_dir = tmp_path / "results/m/pruned/come/sp25/v"
    save_pruned(student, tok, come_dir, dense_config=dense.config, base_model="m", method="CoMe", variant="",
                params={}, target_fraction=0.25, layer_groups=[[0], [1], [2, 3], [4], [5, 6], [7]], summary="test")
    chunks = torch.randint(0, 256, (10, 16), generator=torch.Generator().manual_seed(0))
    data = tmp_path / "results/m/calib/wikitext2-n4-s1-len16.safetensors"
    data.parent.mkdir(parents=True)
    save_calibration(data, chunks, {"id": "x"})
    return tmp_path, dense_dir, come_dir, data


def test_come_jobs_write_loadable_checkpoints_and_remove_the_resume_state(workspace):
    root, dense_dir, come_dir, data = workspace
    teacher = root / "results/m/teacher/t/activations.safetensors"
    facts = run_teacher_job(dense_dir=str(dense_dir), data_path=str(data), student_dir=str(come_dir),
                            out_path=str(teacher), batch_size=4, dtype="float32", device="cpu", meta={"m": "m"})
    assert facts["layers"] == [3, 6] and facts["bytes"] == 10 * 16 * 64 * 2 * 4
    for kind, variant in (("sp", {"lr": 1e-3, "steps": 4, "batch_size": 2}),
                          ("mp", {"lrs": [1e-3, 5e-4], "steps": 3, "batch_size": 2})):
        out = root / f"results/m/pruned/come_{kind}/sp25/v"
        state = root / f"results/m/train_state/come_{kind}/sp25/v"
        run_come_job(kind, student_dir=str(come_dir), dense_dir=str(dense_dir), data_path=str(data),
                     teacher_path=str(teacher) if kind == "sp" else None, out_dir=str(out), state_dir=str(state),
                     variant={**variant, "label": ""}, run_params={"data": {"n": 4}}, target_fraction=0.25,
                     base_model="m", dtype="float32", device="cpu", checkpoint_every=2, progress=False)
        assert not state.exists()
        model = AutoModelForCausalLM.from_pretrained(out)
        assert model.config.num_hidden_layers == 6
        training = json.loads((out / "training.json").read_text())
        assert training["frozen_tensors_identical"] and training["teacher"] == ("stored" if kind == "sp" else "streaming")
        assert (out / "loss_curve.png").stat().st_size > 1000
        assert json.loads((out / "pruning.json").read_text())["method"] == f"CoMe-{kind}"
        assert json.loads((out / "layer_map.json").read_text())[2]["teacher_layers"] == [2, 3]
        assert "softmax over the hidden dimension" in (out / "README.md").read_text()
        new, old = load_file(str(out / "model.safetensors")), load_file(str(come_dir / "model.safetensors"))
        for k in old:
            assert torch.equal(new[k], old[k]) == (not k.startswith(("model.layers.2.", "model.layers.4."))), k
        use = training["data_use"]  # 10 chunks; sp: 4 steps x 2 = 0.8 passes; mp: 3 x 2 = 0.6 per layer, 2 layers
        assert (use["passes_per_phase"], use["wraps"], use["phases"]) == ((0.8, False, 1) if kind == "sp"
                                                                           else (0.6, False, 2))
        card = (out / "README.md").read_text()
        assert ("0.6 pass(es) over the data; all 2 merged layers use the same batch sequence." if kind == "mp"
                else "= 8 chunks drawn from 10 per phase, 0.8 pass(es) over the data.") in card
        history = (out / "loss_history.csv").read_text().splitlines()
        assert len(history) == 1 + (4 if kind == "sp" else 6)
        info = training_info(out)
        assert info["model"] == "m" and info["checkpoint"] == f"come_{kind}/sp25/v"
        assert info["budget"]["T_layer"] == (1 * 2 * 1 * 4 * 2 * 16 if kind == "sp" else 2 * 1 * 1 * 3 * 2 * 16)


def test_come_mp_resume_state_is_dropped_when_the_lrs_change(workspace, monkeypatch):
    """The per-layer LRs (also when they come from lrs_by_model, outside the variant) are in the fingerprint."""
    from layerpuzzle.distill.trainer import STOP_ENV, TrainingInterrupted

    root, dense_dir, come_dir, data = workspace
    out, state = root / "results/m/pruned/come_mp/sp25/v", root / "results/m/train_state/come_mp/sp25/v"

    def run(lrs):
        return run_come_job("mp", student_dir=str(come_dir), dense_dir=str(dense_dir), data_path=str(data),
                            teacher_path=None, out_dir=str(out), state_dir=str(state),
                            variant={"lrs": [1e-3, 5e-4], "steps": 3, "batch_size": 2, "label": ""}, lrs=lrs,
                            run_params={}, target_fraction=0.25, base_model="m", dtype="float32", device="cpu",
                            checkpoint_every=2, progress=False)

    def interrupted_then(lrs):
        monkeypatch.setenv(STOP_ENV, "2")
        with pytest.raises(TrainingInterrupted):
            run([1e-3, 5e-4])  # stopped after step 2 of layer 2, its resume state written at step 2
        assert state.exists()
        monkeypatch.delenv(STOP_ENV)
        return run(lrs)["resumed"]

    assert interrupted_then([1e-3, 5e-4]) == [2, None]  # same LRs: resumed
    assert interrupted_then([2e-3, 1e-4]) == [None, None]  # other LRs: the old state is not resumed


@pytest.mark.parametrize("change", ["dtype", "code"])
def test_resume_state_from_another_dtype_or_code_is_not_resumed(workspace, monkeypatch, caplog, change):
    """The fingerprint holds the model's dtype and device and the code version: a state written with another
    dtype, or by other code, is discarded (the log says which entry differs) and training restarts at step 0."""
    from layerpuzzle.distill import trainer
    from layerpuzzle.distill.trainer import STOP_ENV, TrainingInterrupted

    root, dense_dir, come_dir, data = workspace
    out, state = root / "results/m/pruned/come_mp/sp25/v", root / "results/m/train_state/come_mp/sp25/v"

    def run(dtype):
        return run_come_job("mp", student_dir=str(come_dir), dense_dir=str(dense_dir), data_path=str(data),
                            teacher_path=None, out_dir=str(out), state_dir=str(state),
                            variant={"lrs": [1e-3, 5e-4], "steps": 3, "batch_size": 2, "label": ""},
                            run_params={}, target_fraction=0.25, base_model="m", dtype=dtype, device="cpu",
                            checkpoint_every=2, progress=False)

    monkeypatch.setenv(STOP_ENV, "2")
    with pytest.raises(TrainingInterrupted):
        run("float32")  # resume state of layer 2 written at step 2
    monkeypatch.delenv(STOP_ENV)
    run_json = json.loads((state / "run.json").read_text())
    assert run_json["dtype"] == "torch.float32" and run_json["device"] == "cpu"
    assert run_json["code"] == trainer.code_version() and len(run_json["code"]["source_sha256"]) == 64
    if change == "code":  # as if the package's sources had been edited between the kill and the rerun
        monkeypatch.setattr(trainer, "_CODE_VERSION", {**trainer.code_version(), "source_sha256": "0" * 64})
    with caplog.at_level("WARNING", logger="layerpuzzle.distill.trainer"):
        facts = run("bfloat16" if change == "dtype" else "float32")
    assert facts["resumed"] == [None, None]
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "discarded and training starts from step 0" in message
    if change == "dtype":
        assert "dtype: here 'torch.bfloat16', in the state 'torch.float32'" in message
    else:
        assert f"code.source_sha256: here '{'0' * 64}'" in message


def test_streamline_job(workspace):
    root, dense_dir, _, data = workspace
    out = root / "results/m/pruned/streamline/sp25/v"
    facts = run_streamline_job(dense_dir=str(dense_dir), data_path=str(data), out_dir=str(out),
                               state_dir=str(root / "state"), variant={"steps": 4, "batch_size": 2, "val_chunks": 2,
                                                                       "eval_every": 2, "sbi_chunks": 4},
                               run_params={}, target_fraction=0.25, base_model="m", dtype="float32", device="cpu",
                               checkpoint_every=2, progress=False)
    j0, j1 = facts["window"]
    assert j1 - j0 == 2  # 25 % of the random llama = 2 layers removed: a window of 3 replaced by one
    lmap = json.loads((out / "layer_map.json").read_text())
    assert len(lmap) == 6 and lmap[j0]["teacher_layers"] == [j0, j0 + 1, j0 + 2]
    assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == 6
    use = json.loads((out / "training.json").read_text())["data_use"]  # 10 − 2 validation chunks, 4 × 2 drawn
    assert (use["chunks"], use["samples_per_phase"], use["passes_per_phase"]) == (8, 8, 1.0) and not use["wraps"]
    assert "= 8 chunks drawn from 8 per phase, 1 pass(es) over the data." in (out / "README.md").read_text()


def test_fusegpt_job(workspace):
    root, dense_dir, _, data = workspace
    out = root / "results/m/pruned/fusegpt_train/sp25/v"
    facts = run_fusegpt_job(dense_dir=str(dense_dir), data_path=str(data), out_dir=str(out),
                            state_dir=str(root / "state"),
                            variant={"epochs": 1, "steps": 2, "batch_size": 2, "rank": 4, "lora_rank": 4,
                                     "group_size": 4, "mi_chunks": 2},
                            run_params={}, target_fraction=0.25, base_model="m", dtype="float32", device="cpu",
                            checkpoint_every=1, progress=False)
    removed = facts["removed_original"]
    assert len(removed) == 2 and len(set(removed)) == 2  # 25 % of 8 layers, two distinct original layers
    kept = [e["teacher_layers"] for e in json.loads((out / "layer_map.json").read_text())]
    assert len(kept) == 6 and not set(removed) & {i for g in kept for i in g[:1]}
    assert facts["budget"]["T_layer"] > 0 and not (root / "state").exists()  # resume state removed
    use = json.loads((out / "training.json").read_text())["data_use"]  # 2 steps × 2 of 10 chunks, per iteration
    assert (use["passes_per_phase"], use["phases"], use["phases_share_batches"]) == (0.4, 2, True)
    assert "all 2 iterations use the same batch sequence." in (out / "README.md").read_text()
    assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == 6


def test_table7_and_posttrain_table():
    paper = pd.read_csv(REPO / "resources/paper/table07_posttrain.csv")
    infos = [{"model": "m", "method": "CoMe-sp", "variant": "", "target_pct": 30,
              "budget": {"iterations": 1, "layers_per_iteration": 3, "epochs": 1, "steps": 24, "batch_size": 2,
                         "token_length": 128, "T_layer": 18432}}]
    t7 = table7(infos, paper, ["m"])
    assert list(t7["Method"]) == ["FuseGPT", "LLM-Streamline", "CoMe-mp", "CoMe-sp", "CoMe-sp"]
    assert list(t7["Source"]) == ["paper"] * 4 + ["ours"]
    assert t7.iloc[-1]["T_layer"] == 18432 and t7.iloc[3]["T_layer"] == 1_146_880_000
    assert t7.iloc[0]["T_layer (B)"] == 2.93

    def record(method, scale, ckpt):
        tasks = {k: {"value": 0.5 * scale} for k in
                 ("arc_challenge", "arc_easy", "hellaswag", "openbookqa", "piqa", "winogrande", "mmlu")}
        return {"model": "m", "checkpoint": ckpt, "method": method, "variant": "", "target_pct": 0 if method == "Dense" else 30,
                "removed_layers": 0 if method == "Dense" else 3, "sparsity_pct": 0 if method == "Dense" else 28.0,
                "tasks": tasks, "perplexity": {"c4": {"ppl": 10.0}, "wikitext2": {"ppl": 8.0}}}

    records = [record("CoMe-sp", 0.9, "a"), record("LLM-Streamline", 0.7, "b"), record("CoMe", 0.8, "c"),
               record("Dense", 1.0, "dense"), record("CoMe-mp", 0.85, "d")]
    df = posttrain_table(records, {("m", "CoMe-sp"): 18432, ("m", "CoMe-mp"): 999, ("m", "LLM-Streamline"): 77}, ["m"])
    assert list(df["Method"]) == ["Dense", "CoMe", "CoMe-mp", "CoMe-sp", "LLM-Streamline"]
    assert list(df["RPT"]) == pytest.approx([100.0, 80.0, 85.0, 90.0, 70.0])
    assert df["T_layer"].tolist()[1:] == [0, 999, 18432, 77] and pd.isna(df["T_layer"].iloc[0])
    assert "Wiki-2" in df.columns and "Base method" not in df.columns
