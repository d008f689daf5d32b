"""CoMe on a randomly initialised LLaMA-2-7B-shaped model on a GPU: time and layer forwards.

Prints (never asserts): the streaming scoring pass, and CoMe at ~30 % (10 merges
of 32 layers) with incremental vs full re-scoring on a paper-sized calibration
set (9 windows x 2048 tokens, about what 256 WikiText-2 rows give), bf16 weights.
Random weights make the merge decisions meaningless; the costs are real.

    PYTHONPATH=src python tests/benchmarks/bench_come_gpu_7b.py [--windows 9] [--seq-len 2048] [--layers 32]
"""
from __future__ import annotations

import argparse
import copy
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=9)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--remove", type=int, default=10)
    a = ap.parse_args()
    from transformers import AutoModelForCausalLM, LlamaConfig

    from layerpuzzle.engine.layer_scores import score_layers
    from layerpuzzle.engine.runner import LayerwiseRunner
    from layerpuzzle.methods.come.progressive import ComeSettings, Execution, come

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=a.layers, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)
    cfg._attn_implementation = "sdpa"
    t0 = time.time()
    torch.manual_seed(0)
    with torch.device("cuda"):
        base = AutoModelForCausalLM.from_config(copy.deepcopy(cfg), dtype=torch.bfloat16).eval()
    torch.cuda.synchronize()
    n_params = sum(p.numel() for p in base.parameters())
    print(f"{torch.cuda.get_device_name()}: random LLaMA-2-7B shape, {n_params/1e9:.3f} B params, bf16, "
          f"built in {time.time()-t0:.1f} s")
    ids = torch.randint(0, 32000, (a.windows, a.seq_len), generator=torch.Generator().manual_seed(0))
    sd = {k: v.detach().to("cpu", copy=True) for k, v in base.state_dict().items()}

    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    s = score_layers(LayerwiseRunner(base, ids, batch_size=2, device="cuda"), max_span=1, progress=False)
    torch.cuda.synchronize()
    print(f"streaming scores (BI, SBI, activations): {time.time()-t0:.2f} s, {s.layer_forwards} layer forwards, "
          f"peak GPU {torch.cuda.max_memory_allocated()/2**30:.1f} GiB")

    del base
    torch.cuda.empty_cache()
    results = {}
    for mode in ("incremental", "full"):
        with torch.device("cuda"):  # a fresh copy of the dense weights for each mode
            model = AutoModelForCausalLM.from_config(copy.deepcopy(cfg), dtype=torch.bfloat16).eval()  # merging edits the config
        model.load_state_dict(sd)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        res = come(model, ids, a.remove, ComeSettings(), Execution(recompute=mode, batch_size=2, device="cuda"))
        torch.cuda.synchronize()
        dt = time.time() - t0
        summary = res.summary()
        results[mode] = (dt, summary, [(it.window_start, it.window_stop) for it in res.iterations])
        print(f"CoMe {mode:11s}: {dt:7.2f} s for {a.remove} merges, layer forwards {summary.get('layer_forwards')}, "
              f"peak GPU {torch.cuda.max_memory_allocated()/2**30:.1f} GiB")
        del model
        torch.cuda.empty_cache()
    same = results["incremental"][2] == results["full"][2]
    print(f"same merge windows in both modes: {same}")


if __name__ == "__main__":
    main()
