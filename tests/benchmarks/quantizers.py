"""Benchmark: time, peak memory and checkpoint size of every quantization / sparsification scheme.

Each scheme runs in its own Python process (so that its peak RSS is its own): load the model, run
``layerpuzzle.methods.quantize.quantize`` on the calibration windows, save with ``save_quantized``.
Prints one row per scheme (``oneshot`` seconds, wall seconds of the child, RSS after loading and peak
RSS, weights on disk and their ratio to the fp32 source). Prints only; asserts nothing.

    python tests/benchmarks/quantizers.py [MODEL_DIR] [--calib FILE.safetensors] [--windows 4]
        [--schemes gptq-w4a16-g64 awq-w4a16-g64 ...] [--threads 2] [--layers K]

MODEL_DIR: an HF directory, e.g. the embedded SmolLM2 the workflow writes to results/smollm2-135m/dense;
without it a tiny random LLaMA is built into a temporary directory. ``--calib``: a calibration set the
workflow wrote (results/{model}/calib/*.safetensors); without it random token windows. ``--layers K``
keeps the first K decoder layers (the layer shapes are real; time scales with the layer count). Needs the
``compress`` extra (llmcompressor).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

DEFAULT_SCHEMES = ("sparsegpt-50", "gptq-w4a16-g{G}", "smoothquant-w8a8-a0.8", "awq-w4a16-g{G}")


def rss_mb() -> float:
    """Current resident set size (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def calibration(args, vocab: int):
    import torch

    if args.calib:
        from layerpuzzle.data.calibration import load_calibration

        ids = load_calibration(args.calib)
    else:
        ids = torch.randint(0, vocab, (args.windows, args.seq_len), generator=torch.Generator().manual_seed(0))
    return ids[: args.windows]


def child(args) -> None:
    """One scheme: load, quantize, save; print a JSON line."""
    import torch

    from layerpuzzle.methods.quantize import quantize, save_quantized, weights_bytes
    from layerpuzzle.models.sources import load_model

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, tok = load_model(args.model)
    ids = calibration(args, model.config.vocab_size)
    loaded = rss_mb()
    model, record = quantize(model, tok, ids, args.one, threads=args.threads)
    out = Path(args.out) / args.one
    save_quantized(model, tok, out, record, base_model=Path(args.model).name)
    print("RESULT " + json.dumps({
        "scheme": args.one, "core_s": record["timing"]["core_s"], "wall_s": round(time.perf_counter() - t0, 1),
        "rss_loaded_mb": round(loaded), "peak_rss_mb": round(peak_rss_mb()), "bytes": weights_bytes(out),
        "calib": list(ids.shape), "workarounds": record["workarounds"]}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="HF model directory (default: a saved random llama)")
    ap.add_argument("--schemes", nargs="+", help="scheme slugs ({G} = --group)")
    ap.add_argument("--group", type=int, default=None, help="group size for {G} (default: 64 if 128 does not "
                                                              "divide the hidden size, else 128)")
    ap.add_argument("--calib", help="calibration .safetensors (default: random token windows)")
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, help="keep only the first K decoder layers (real widths, K/L of the work)")
    ap.add_argument("--keep", help="write the checkpoints here (default: a temporary directory)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        child(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench-quant-") as tmp:
        model_dir = args.model
        if model_dir is None:
            from layerpuzzle.models.random_models import build_random_model

            model, tok = build_random_model("llama", seed=0)
            model_dir = str(Path(tmp) / "random-llama")
            model.save_pretrained(model_dir)
            tok.save_pretrained(model_dir)
        if args.layers:
            from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()  # the dropped layers' weights are reported as unexpected
            src = model_dir
            cfg = AutoConfig.from_pretrained(model_dir)
            full = cfg.num_hidden_layers
            cfg.num_hidden_layers = args.layers
            if getattr(cfg, "layer_types", None):
                cfg.layer_types = cfg.layer_types[: args.layers]
            cut = AutoModelForCausalLM.from_pretrained(model_dir, config=cfg, dtype="float32")
            model_dir = str(Path(tmp) / f"{Path(model_dir).name}-first{args.layers}of{full}")
            cut.save_pretrained(model_dir)
            AutoTokenizer.from_pretrained(src).save_pretrained(model_dir)
            del cut
        hidden = json.loads((Path(model_dir) / "config.json").read_text())["hidden_size"]
        group = args.group or (128 if hidden % 128 == 0 else 64 if hidden % 64 == 0 else 32)
        schemes = [s.replace("{G}", str(group)) for s in (args.schemes or DEFAULT_SCHEMES)]
        out_root = args.keep or str(Path(tmp) / "out")
        fp32 = sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors"))
        print(f"model {model_dir} ({fp32 / 2**20:.1f} MiB of safetensors), threads {args.threads}, "
              f"calibration {args.calib or 'random ids'} ({args.windows} windows)")
        rows = []
        for slug in schemes:
            cmd = [sys.executable, __file__, model_dir, "--one", slug, "--out", out_root, "--threads",
                   str(args.threads), "--windows", str(args.windows), "--seq-len", str(args.seq_len)]
            if args.calib:
                cmd += ["--calib", args.calib]
            res = subprocess.run(cmd, capture_output=True, text=True)
            line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if res.returncode != 0 or line is None:
                print(f"{slug}: failed (exit {res.returncode})\n{res.stderr[-3000:]}")
                continue
            rows.append(json.loads(line[len("RESULT "):]))
            r = rows[-1]
            print(f"{slug:28s} oneshot {r['core_s']:8.1f} s  wall {r['wall_s']:8.1f} s  "
                  f"RSS loaded {r['rss_loaded_mb']:6d} MiB  peak {r['peak_rss_mb']:6d} MiB  "
                  f"disk {r['bytes'] / 2**20:8.1f} MiB ({r['bytes'] / fp32:.3f} of fp32)"
                  f"{'  [' + ', '.join(r['workarounds']) + ']' if r['workarounds'] else ''}", flush=True)
        print(json.dumps({"model": model_dir, "fp32_bytes": fp32, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
