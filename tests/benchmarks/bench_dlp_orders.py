"""Benchmark: the removal-order computation of each DLP baseline at the embedded-default settings.

Loads a prepared model directory (default: results/smollm2-135m/dense), builds each method's
calibration set from the data mirror exactly as the workflow does (config/methods/*.schema.yaml
defaults), and prints the wall time of the order computation alone (no Python start-up or model
loading), SLEB's layer forwards and candidate evaluations, and the order.  Prints only.

    python tests/benchmarks/bench_dlp_orders.py [MODEL_DIR] [--methods mag_plus taylor_plus shortgpt sleb]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from layerpuzzle.config import load_schema
from layerpuzzle.data.calibration import CalibrationSpec, build_calibration
from layerpuzzle.data.text_sources import calibration_rows, resolve_mirror
from layerpuzzle.methods.dlp.pipeline import DATA_FREE, compute_order
from layerpuzzle.models.sources import load_model

REPO = Path(__file__).resolve().parents[2]


def defaults(key: str) -> dict:
    """The schema defaults of method ``key`` (what the embedded default config runs)."""
    frag = load_schema(REPO / "config" / "schema.yaml")["properties"]["methods"]["properties"][key]
    props = frag["properties"]
    out = {k: v["default"] for k, v in props.items() if k not in ("variants", "enabled") and "default" in v}
    out["variant"] = {k: v for k, v in frag["properties"]["variants"]["default"][0].items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(REPO / "results" / "smollm2-135m" / "dense"))
    ap.add_argument("--methods", nargs="+", default=["mag_plus", "taylor_plus", "shortgpt", "sleb"])
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.2, 0.3])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mirror = resolve_mirror(os.environ.get("LAYERPUZZLE_DATA_MIRROR") or str(REPO.parent / "shared" / "data"))
    model, tok = load_model(args.model, dtype="float32", device="cpu")
    print(f"model {args.model}: {model.config.num_hidden_layers} layers; threads {args.threads}")
    for key in args.methods:
        d = defaults(key)
        calib, meta = None, {}
        if key not in DATA_FREE:
            spec = CalibrationSpec(**d["calibration"])
            rows, _ = calibration_rows(spec.dataset, mirror)
            calib, meta = build_calibration(rows, tok, spec)
            meta = {k: str(v) for k, v in meta.items()}
        settings = {k: v for k, v in d.items() if k not in ("variant", "calibration", "published_orders")}
        t0 = time.perf_counter()
        res = compute_order(key, model, variant=d["variant"], settings=settings, calib=calib, calib_meta=meta,
                            fractions=args.fractions)
        dt = time.perf_counter() - t0
        used = res.order.info.get("calibration_windows_used")
        shape = f"{used} x {calib.shape[1]} tokens" if calib is not None else "data-free"
        extra = {k: v for k, v in res.facts.items() if k in ("layer_forwards", "candidate_evaluations")}
        print(f"{key:12s} {dt:8.1f} s  calibration {meta.get('id', '-')} ({shape})  {extra}")
        print(f"{'':12s} order {res.order.layers[:12]}")


if __name__ == "__main__":
    main()
