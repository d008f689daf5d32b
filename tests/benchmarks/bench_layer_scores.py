"""Peak memory of the streaming layer-score pass vs a plain output_hidden_states pass.

Prints (never asserts) the extra resident memory each way needs on top of the
loaded model, for the same calibration windows, and checks that both give the
same BI.  Each variant runs in its own subprocess so that peaks do not mix.

    python tests/benchmarks/bench_layer_scores.py [MODEL_DIR] [--windows 16] [--seq-len 512]

MODEL_DIR defaults to results/smollm2-135m/dense (build it with
`snakemake --cores 2 results/smollm2-135m/dense`); without it a random 8-layer
LLaMA with hidden size 512 is used.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, torch, torch.nn.functional as F
from layerpuzzle.engine.layer_scores import score_layers
from layerpuzzle.engine.runner import LayerwiseRunner
torch.set_num_threads(2)
mode, model_dir, windows, seq_len = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if model_dir == "random":
    from layerpuzzle.models.random_models import build_random_model
    model, _ = build_random_model("llama", hidden_size=512, intermediate_size=1536, num_attention_heads=8,
                                  num_key_value_heads=4, head_dim=64, max_position_embeddings=4096)
else:
    from layerpuzzle.models.sources import load_model
    model, _ = load_model(model_dir, dtype="float32", device="cpu")
_ = sum(float(p.float().sum()) for p in model.parameters())  # page in mmapped weights before the baseline
ids = torch.randint(0, model.config.vocab_size, (windows, seq_len), generator=torch.Generator().manual_seed(0))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.time()
with torch.no_grad():
    if mode == "streaming":
        s = score_layers(LayerwiseRunner(model, ids, batch_size=2), max_span=1, progress=False)
        bi = [r["value"] for r in s.table.rows() if r["span"] == 0 and r["estimator"] == "cosine_mean"]
    else:
        sums, n = None, 0
        for i in range(0, windows, 2):
            hs = model(ids[i:i+2], output_hidden_states=True).hidden_states
            c = torch.stack([F.cosine_similarity(hs[l], hs[l+1], dim=-1).sum() for l in range(len(hs) - 1)])
            sums = c if sums is None else sums + c
            n += hs[0].shape[0] * hs[0].shape[1]
        bi = (1 - sums / n).tolist()[:-1]  # the last HF entry is after the final norm
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"extra_mb": (peak - base) / 1024, "seconds": time.time() - t0, "bi": bi}))
"""


def run(mode: str, model: str, windows: int, seq_len: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, model, str(windows), str(seq_len)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="results/smollm2-135m/dense")
    ap.add_argument("--windows", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=512)
    a = ap.parse_args()
    model = a.model if Path(a.model).is_dir() else "random"
    print(f"model: {model}; {a.windows} windows x {a.seq_len} tokens, batch 2")
    s = run("streaming", model, a.windows, a.seq_len)
    h = run("hidden_states", model, a.windows, a.seq_len)
    diff = max(abs(x - y) for x, y in zip(s["bi"], h["bi"]))
    print(f"streaming pass (all windows, layer by layer): +{s['extra_mb']:8.1f} MB peak RSS, {s['seconds']:6.1f} s")
    print(f"output_hidden_states pass (batch by batch):   +{h['extra_mb']:8.1f} MB peak RSS, {h['seconds']:6.1f} s")
    print(f"ratio streaming / hidden_states: {s['extra_mb'] / max(h['extra_mb'], 1e-9):.2f}")
    print(f"max |BI difference| (layers 0..L-2): {diff:.2e}")
    print("note: the streaming pass keeps every calibration window at max_span+2 depths (it can resume from any "
          "layer); output_hidden_states keeps all L+1 depths of one batch. Their ratio depends on windows/batch vs "
          "layers: the streaming pass never holds all layers' hidden states for all tokens at once.")


if __name__ == "__main__":
    main()
