"""Benchmark: our ``evaluate_task`` (model object loaded once) vs stock lm-eval (``model="hf"``).

Both run the same local task (rendered from resources/lm_eval_tasks over the data mirror) with the
same limit, batch size and seeds.  Prints wall time, tokens/s (tokens of every request's
context + continuation, counted with the model's tokenizer) and whether the metric values are
identical.  Prints only; asserts nothing about timings.

    python tests/benchmarks/bench_evaluation.py [CHECKPOINT_DIR] [--task arc_easy] [--limit 50]

Without a checkpoint a tiny random LLaMA is built and saved into a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

from layerpuzzle.data.text_sources import resolve_mirror  # noqa: E402
from layerpuzzle.evaluation.harness import TASKS, evaluate_task, json_safe  # noqa: E402
from layerpuzzle.evaluation.local_tasks import local_task_manager  # noqa: E402


def request_tokens(raw: dict, lm_task: str, tokenizer) -> int:
    """Tokens of all requests (context + continuation) in lm-eval's logged samples."""
    return sum(
        len(tokenizer(ctx + cont)["input_ids"])
        for sample in raw["samples"][lm_task]
        for ctx, cont in sample["arguments"]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?", help="HF model directory (default: a saved random llama)")
    ap.add_argument("--task", default="arc_easy", choices=list(TASKS))
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each side (min is printed)")
    ap.add_argument("--mirror", default=os.environ.get("LAYERPUZZLE_DATA_MIRROR", "/work/shared/data"))
    args = ap.parse_args()

    import lm_eval
    from transformers import AutoModelForCausalLM, AutoTokenizer

    mirror = resolve_mirror(args.mirror)
    spec = TASKS[args.task]
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        ckpt = args.checkpoint
        if ckpt is None:
            from layerpuzzle.models.random_models import build_random_model

            model, tok = build_random_model("llama", seed=0)
            ckpt = str(Path(tmp) / "random-llama")
            model.save_pretrained(ckpt)
            tok.save_pretrained(ckpt)
        print(f"checkpoint {ckpt}  task {spec.mirror_task}  limit {args.limit}  batch {args.batch_size}  "
              f"threads {torch.get_num_threads()}")

        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(ckpt)
        t_load = time.perf_counter() - t0

        # untimed warm-up (imports, first dataset build, kernel setup) so that neither side pays it
        evaluate_task(model, tok, args.task, mirror=mirror, limit=1, batch_size=args.batch_size,
                      max_length=None, seed=args.seed, device="cpu")

        def run_ours():
            return evaluate_task(
                model, tok, args.task, mirror=mirror, limit=args.limit, batch_size=args.batch_size,
                max_length=None, seed=args.seed, device="cpu", log_samples=True,
            )

        def run_stock():
            with local_task_manager(mirror) as (tm, rendered):
                out = lm_eval.simple_evaluate(
                    model="hf", model_args=f"pretrained={ckpt},dtype=float32", tasks=[spec.mirror_task],
                    num_fewshot=spec.mirror_num_fewshot, limit=args.limit, batch_size=args.batch_size,
                    device="cpu", task_manager=tm, log_samples=True, random_seed=args.seed,
                    numpy_random_seed=args.seed, torch_random_seed=args.seed, fewshot_random_seed=args.seed,
                )
                return json_safe(out, rendered, keep_samples=True)

        # alternate the order between repeats; the minimum is the least disturbed time
        times: dict[str, list[float]] = {"ours": [], "stock": []}
        for r in range(args.repeats):
            for name in (("ours", "stock") if r % 2 == 0 else ("stock", "ours")):
                t0 = time.perf_counter()
                if name == "ours":
                    ours, ours_raw = run_ours()
                else:
                    stock_raw = run_stock()
                times[name].append(time.perf_counter() - t0)
        t_ours, t_stock = min(times["ours"]), min(times["stock"])

    n_tok = request_tokens(ours_raw, spec.mirror_task, tok)
    n_tok_stock = request_tokens(stock_raw, spec.mirror_task, tok)
    res_ours, res_stock = ours_raw["results"][spec.mirror_task], stock_raw["results"][spec.mirror_task]
    metrics = sorted(k for k in res_ours if "," in k)
    print(f"model load (ours, once)      {t_load:8.2f} s")
    print(f"all times (s): ours {[round(t, 2) for t in times['ours']]}  stock {[round(t, 2) for t in times['stock']]}")
    print(f"evaluate_task (ours, min)    {t_ours:8.2f} s   {n_tok:8d} tokens   {n_tok / t_ours:9.0f} tokens/s")
    print(f"stock lm-eval 'hf' (min)     {t_stock:8.2f} s   {n_tok_stock:8d} tokens   {n_tok_stock / t_stock:9.0f} tokens/s"
          "   (includes its own model load)")
    for k in metrics:
        print(f"  {k:24s} ours {res_ours[k]!s:22s} stock {res_stock.get(k)!s:22s} identical {res_ours[k] == res_stock.get(k)}")
    same_requests = [s["arguments"] for s in ours_raw["samples"][spec.mirror_task]] == [
        s["arguments"] for s in stock_raw["samples"][spec.mirror_task]
    ]
    print(f"reported {spec.metric}: {ours['value']} (n={ours['n_samples']}); all metrics identical: "
          f"{all(res_ours[k] == res_stock.get(k) for k in metrics)}; identical requests: {same_requests}")


if __name__ == "__main__":
    main()
