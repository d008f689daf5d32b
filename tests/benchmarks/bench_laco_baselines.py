"""Pruning time and peak memory of LaCo, LLM-Pruner and SliceGPT side by side (LaCo Table 4), in one run.

Prints (never asserts), per method: ``pruning_seconds`` from its pruning.json (the computation only, LaCo
Table 4's definition), the wall time of the whole job (load, calibration, prune, save) and the peak memory
of the process that ran it (CPU: peak RSS, ``VmHWM``; CUDA: ``torch.cuda.max_memory_allocated``). Each
method runs in its own child process, so one's peak does not hide another's. LaCo runs at the target;
LLM-Pruner and SliceGPT at LaCo's achieved sparsity (as the LaCo tables do).

    PYTHONPATH=src python tests/benchmarks/bench_laco_baselines.py [MODEL_DIR] [--target 0.3] [--device cpu]
    PYTHONPATH=src python tests/benchmarks/bench_laco_baselines.py --random   # the tiny random LLaMA: a smoke run

MODEL_DIR defaults to results/smollm2-135m/dense (SmolLM2-135M; build it with
`snakemake --cores 2 results/smollm2-135m/dense`). Calibration as the embedded default configures it:
LaCo its 5 notebook sentences, LLM-Pruner 10 random 64-token WikiText-2 windows, SliceGPT 8 of 128
(data mirror $LAYERPUZZLE_DATA_MIRROR, default ../shared/data).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SENTENCES = ["Mouron () is a commune in the Arde",
             "The 81st Mechanised Brigade () is a mechanised brigade of the Romanian Land Force",
             "There are 18 National Natural Landmarks in the U.S. state of Washington, out of nearly",
             "Torreorgaz is a municipality in the",
             "Copa Libertadores 1973 was won by defending champions Independiente of A"]
LACO_SEARCH = {"merge_layers": 4, "lowest_layer": 1, "highest_layer": None, "interval": 2, "threshold": 0.65,
               "stop_at_target": True, "threshold_step": 0.05}


def _peak(device: str) -> float:
    """Peak memory of this process in MiB."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2 ** 20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _calibration(model_dir: str, out: Path, n: int, seq_len: int) -> str:
    from layerpuzzle.data.calibration import random_windows, save_calibration
    from layerpuzzle.data.text_sources import calibration_rows, resolve_mirror
    from layerpuzzle.models.sources import load_model

    _, tok = load_model(model_dir)
    rows, _ = calibration_rows("wikitext2", resolve_mirror(None))
    ids, info = random_windows(rows, tok, n, seq_len, 42)
    path = out / f"calib-{n}x{seq_len}.safetensors"
    save_calibration(path, ids, {"id": path.stem})
    return str(path)


def _job(method: str, model_dir: str, out: str, target: float, device: str, threads: int, queue) -> None:
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    common = dict(model_name="bench", target_fraction=target, dtype="auto", device=device)
    if method == "LaCo":
        from layerpuzzle.methods.laco.pipeline import run_laco

        run_laco(model_dir, out, variant={"variant": "described"}, search=dict(LACO_SEARCH), sentences=SENTENCES,
                 **common)
    elif method == "LLM-Pruner":
        from layerpuzzle.methods.llm_pruner.pipeline import run_llm_pruner

        calib = _calibration(model_dir, Path(out).parent, 10, 64)
        t0 = time.perf_counter()
        run_llm_pruner(model_dir, calib, out, variant={}, calibration={"dataset": "wikitext2", "seed": 42}, **common)
    else:
        from layerpuzzle.methods.slicegpt.pipeline import run_slicegpt

        calib = _calibration(model_dir, Path(out).parent, 8, 128)
        t0 = time.perf_counter()
        run_slicegpt(model_dir, calib, out, variant={}, calibration={"dataset": "wikitext2", "seed": 42},
                     batch_size=8, **common)
    wall = time.perf_counter() - t0
    rec = json.loads((Path(out) / "pruning.json").read_text())
    queue.put({"method": method, "pruning_seconds": rec["pruning_seconds"], "job_seconds": wall,
               "peak_mib": _peak(device), "sparsity_pct": rec["sparsity_pct"], "removed_layers": rec["removed_layers"]})


def _run(method, model_dir, out, target, device, threads):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_job, args=(method, model_dir, out, target, device, threads, q))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"{method} failed (exit {p.exitcode})")
    return q.get()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", nargs="?", default=str(REPO / "results/smollm2-135m/dense"))
    ap.add_argument("--target", type=float, default=0.3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--random", action="store_true", help="a tiny random 8-layer LLaMA (smoke run)")
    a = ap.parse_args()
    os.environ.setdefault("LAYERPUZZLE_DATA_MIRROR", str(REPO.parent / "shared" / "data"))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = a.model_dir
        if a.random:
            from layerpuzzle.models.random_models import build_random_model

            model, tok = build_random_model("llama", seed=0)
            model_dir = str(Path(tmp) / "dense")
            model.save_pretrained(model_dir)
            tok.save_pretrained(model_dir)
        rows = [_run("LaCo", model_dir, str(Path(tmp) / "laco"), a.target, a.device, a.threads)]
        # the baselines at LaCo's achieved sparsity, rounded down to 0.1 % (LaCo: "equal or slightly smaller")
        width = int(rows[0]["sparsity_pct"] * 10) / 1000
        for method in ("LLM-Pruner", "SliceGPT"):
            rows.append(_run(method, model_dir, str(Path(tmp) / method), width, a.device, a.threads))
    print(f"model {model_dir if not a.random else 'random 8-layer LLaMA'}, device {a.device}, "
          f"{a.threads} thread(s); LaCo target {a.target}, baselines at {100 * width:.1f} %")
    print(f"{'method':<12}{'sparsity %':>12}{'pruning s':>12}{'job s':>10}{'peak MiB':>11}")
    for r in rows:
        print(f"{r['method']:<12}{r['sparsity_pct']:>12.2f}{r['pruning_seconds']:>12.2f}{r['job_seconds']:>10.2f}"
              f"{r['peak_mib']:>11.0f}")


if __name__ == "__main__":
    main()
