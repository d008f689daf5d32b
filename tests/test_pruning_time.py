"""Every method family records its pruning time (LaCo Table 4: the computation only) in pruning.json.

One tiny run per family (direct removal, weight merging, CoMe, post-training; width pruning is covered in
test_width_pruning_workflow / test_llm_pruner / test_slicegpt): ``pruning_seconds`` exists, is > 0 and equals
``timing.core_s``; re-executions that differ only in these timings are 'equivalent' for the audit.
"""
import json

import numpy as np
import pytest
import torch

from layerpuzzle.audit.compare import TIMING_RULE, compare_output
from layerpuzzle.data.calibration import save_calibration
from layerpuzzle.methods.dlp.order_io import read_order, write_order
from layerpuzzle.methods.dlp.pipeline import checkpoint_from_order, compute_order
from layerpuzzle.models.checkpoint import timing_fields
from layerpuzzle.models.random_models import build_random_model
from layerpuzzle.provenance import sha256_path


def _timed(record: dict) -> float:
    assert record["pruning_seconds"] > 0, record
    assert record["timing"]["core_s"] == record["pruning_seconds"]
    return record["pruning_seconds"]


def _pruning(d) -> dict:
    return json.loads((d / "pruning.json").read_text())


@pytest.fixture()
def dense(tmp_path):
    model, tok = build_random_model("llama", seed=0)
    d = tmp_path / "dense"
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture()
def calib(tmp_path):
    path = tmp_path / "calib.safetensors"
    save_calibration(path, torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(0)), {"id": "x"})
    return path


def test_timing_fields():
    assert timing_fields(None) == {}
    assert timing_fields(2.5, {"order_s": 2.0, "cut_s": 0.5}) == {
        "pruning_seconds": 2.5, "timing": {"order_s": 2.0, "cut_s": 0.5, "core_s": 2.5}}


def test_direct_removal_counts_the_order_and_the_cut(tmp_path):
    model, tok = build_random_model("llama", seed=0)
    order = compute_order("mag_plus", model, variant={"plus_heuristic": True}).order
    assert order.seconds > 0
    write_order(order, tmp_path / "order.parquet")
    back = read_order(tmp_path / "order.parquet")
    assert back.seconds == order.seconds and back == order  # the time travels with the order
    checkpoint_from_order(model, tok, back, tmp_path / "ckpt", target_fraction=0.25, base_model="m")
    rec = _pruning(tmp_path / "ckpt")
    core = _timed(rec)
    assert rec["timing"]["order_s"] == order.seconds and rec["timing"]["cut_s"] > 0
    assert core == pytest.approx(order.seconds + rec["timing"]["cut_s"], rel=1e-12)


def test_laco_records_its_search_time(tmp_path, dense):
    from layerpuzzle.methods.laco.pipeline import run_laco

    search = {"merge_layers": 3, "lowest_layer": 1, "highest_layer": None, "interval": 2, "threshold": 0.6,
              "stop_at_target": True, "threshold_step": 0.05}
    run_laco(str(dense), str(tmp_path / "laco"), model_name="m", target_fraction=0.25, variant={"variant": "described"},
             search=search, sentences=["Mouron is a commune in the Arde", "Torreorgaz is a municipality"],
             dtype="float32", device="cpu")
    _timed(_pruning(tmp_path / "laco"))


def test_mka_records_its_merge_time(tmp_path, dense):
    from layerpuzzle.methods.mka.npib import npib_frame
    from layerpuzzle.methods.mka.pipeline import run_mka

    S = np.random.default_rng(0).random((8, 8))
    npib_frame((S + S.T) / 2, "m").to_parquet(tmp_path / "npib.parquet", index=False)
    run_mka(str(dense), str(tmp_path / "npib.parquet"), str(tmp_path / "mka"), model_name="m", target_fraction=0.25,
            variant={"fusion": "described", "kernel": "described"}, dtype="float32", device="cpu")
    _timed(_pruning(tmp_path / "mka"))


def test_fusegpt_records_its_loop_time(tmp_path, dense, calib):
    from layerpuzzle.methods.fusegpt.pipeline import run_fusegpt

    run_fusegpt(str(dense), str(calib), str(tmp_path / "fg"), model_name="m", target_fraction=0.25, fuse=False,
                variant={}, calibration={"sampling": "rows", "dataset": "x", "seed": 0}, batch_size=2,
                dtype="float32", device="cpu")
    _timed(_pruning(tmp_path / "fg"))


def test_come_records_its_merge_loop_time(tmp_path, dense, calib):
    from layerpuzzle.methods.come.job import build_checkpoint

    build_checkpoint("come", model_dir=dense, calib_path=calib, out_dir=tmp_path / "come", model_name="m",
                     settings={"p": 1.0, "rho": 0.0, "layers_per_merge": 2}, execution={}, calibration={},
                     target_fraction=0.25, dtype="float32", device="cpu")
    rec = _pruning(tmp_path / "come")
    _timed(rec)
    run = json.loads((tmp_path / "come" / "come_run.json").read_text())
    assert run["seconds"] == round(rec["pruning_seconds"], 3)  # the loop's own clock


def test_post_training_records_its_training_time(tmp_path, dense, calib):
    from layerpuzzle.posttrain_jobs import run_streamline_job

    out = tmp_path / "st"
    run_streamline_job(dense_dir=str(dense), data_path=str(calib), out_dir=str(out), state_dir=str(tmp_path / "s"),
                       variant={"steps": 2, "batch_size": 2, "val_chunks": 1, "eval_every": 2, "sbi_chunks": 2},
                       run_params={}, target_fraction=0.25, base_model="m",
                       dtype="float32", device="cpu", checkpoint_every=1, progress=False)
    rec = _pruning(out)
    assert _timed(rec) <= json.loads((out / "training.json").read_text())["seconds"] + 0.01  # the job's wall time


def _ckpt(d, seconds, method="LaCo"):
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"same weights")
    (d / "pruning.json").write_text(json.dumps({"method": method, "removed_layers": 2,
                                                **timing_fields(seconds, {"order_s": seconds / 2})}))


def test_audit_treats_pruning_times_as_run_bookkeeping(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _ckpt(a, 1.5)
    _ckpt(b, 2.25)
    _ckpt(c, 1.5, method="MKA")
    out = compare_output("results/m/pruned/laco/sp25/v", sha256_path(a), a, b)
    assert (out.outcome, out.differing_files, out.rules) == ("equivalent", ("pruning.json",), (TIMING_RULE,))
    assert compare_output("results/m/pruned/laco/sp25/v", sha256_path(a), a, c).outcome == "different"


def test_audit_compares_orders_without_their_seconds(tmp_path):
    model, _ = build_random_model("llama", seed=0)
    order = compute_order("mag_plus", model, variant={"plus_heuristic": True}).order
    paths = {}
    for name, seconds, layers in (("a", 1.0, None), ("b", 3.0, None), ("c", 1.0, order.layers[::-1])):
        other = type(order)(**{**order.__dict__, "seconds": seconds, "layers": layers or order.layers})
        paths[name] = tmp_path / name / "order.parquet"
        write_order(other, paths[name])
    rec = sha256_path(paths["a"])
    out = compare_output("results/m/orders/mag_plus/data-free/default/order.parquet", rec, paths["a"], paths["b"])
    assert (out.outcome, out.rules) == ("equivalent", (TIMING_RULE,))
    assert compare_output("results/m/orders/x/order.parquet", rec, paths["a"], paths["c"]).outcome == "different"
