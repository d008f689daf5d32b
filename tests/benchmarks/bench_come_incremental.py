"""Layer forwards and wall time of CoMe (and CoMe-P) with incremental vs full re-scoring.

Prints (never asserts) the decoder-layer forward count and seconds of both
modes for the same calibration set, and whether their merges and final weights
are identical.  Default: SmolLM2-135M at ~30 % (11 merges of 30 layers).

    python tests/benchmarks/bench_come_incremental.py [MODEL_DIR] [--calib-rows 32] [--seq-len 512]
        [--target 0.3] [--method come|come_p] [--granularity 4] [--threads 2] [--modes incremental,full]

MODEL_DIR defaults to results/smollm2-135m/dense; build it with
`snakemake -s /work/main/Snakefile --cores 2 results/smollm2-135m/dense` (any
working directory). The calibration rows come from the data mirror
($LAYERPUZZLE_DATA_MIRROR, default ../shared/data): WikiText-2 train, seed 10.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", default=str(REPO / "results" / "smollm2-135m" / "dense"))
    ap.add_argument("--calib-rows", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--target", type=float, default=0.3)
    ap.add_argument("--method", choices=("come", "come_p"), default="come")
    ap.add_argument("--granularity", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="incremental,full")
    args = ap.parse_args()
    if not Path(args.model_dir).is_dir():
        sys.exit(f"{args.model_dir} not found: build it with "
                 f"`snakemake -s {REPO}/Snakefile --cores 2 results/smollm2-135m/dense` in {REPO}")
    torch.set_num_threads(args.threads)

    from layerpuzzle.data.calibration import CalibrationSpec, build_calibration
    from layerpuzzle.data.text_sources import calibration_rows, resolve_mirror
    from layerpuzzle.methods.come.artifacts import removed_layers
    from layerpuzzle.methods.come.come_p import ComePSettings, come_p
    from layerpuzzle.methods.come.progressive import ComeSettings, Execution, come
    from layerpuzzle.models.sources import load_model

    dense, tok = load_model(args.model_dir, dtype="float32", device="cpu")
    mirror = resolve_mirror(os.environ.get("LAYERPUZZLE_DATA_MIRROR") or str(REPO.parent / "shared" / "data"))
    rows, _ = calibration_rows("wikitext2", mirror)
    ids, info = build_calibration(rows, tok, CalibrationSpec("wikitext2", args.calib_rows, 10, args.seq_len))
    n_remove = removed_layers(dense.config, args.target)
    print(f"{args.model_dir}: {dense.config.num_hidden_layers} layers, remove {n_remove}; calibration "
          f"{args.calib_rows} rows -> {ids.shape[0]} windows x {ids.shape[1]} tokens; method {args.method}; "
          f"{args.threads} threads")
    runs = {}
    for mode in args.modes.split(","):
        model = copy.deepcopy(dense)
        t0 = time.perf_counter()
        if args.method == "come":
            res = come(model, ids, n_remove, ComeSettings(), Execution(recompute=mode))
        else:
            res = come_p(model, ids, n_remove, ComePSettings(granularity=args.granularity), Execution(recompute=mode))
        seconds = time.perf_counter() - t0
        runs[mode] = (res, model.state_dict())
        print(f"{mode:>12}: {res.layer_forwards:5d} layer forwards, {seconds:7.1f} s; per iteration "
              f"{[it.layer_forwards for it in res.iterations]}; windows {[it.window_start for it in res.iterations]}")
    if len(runs) == 2:
        (a, sa), (b, sb) = runs.values()
        same = a.groups == b.groups and all(torch.equal(sa[k], sb[k]) for k in sa)
        print(f"identical merges and weights: {same}; groups {a.groups}")


if __name__ == "__main__":
    main()
