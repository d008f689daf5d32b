"""One benchmark of one checkpoint through lm-eval (rule benchmark_task)."""
from layerpuzzle.atomic import write_json
from layerpuzzle.data.text_sources import resolve_mirror
from layerpuzzle.evaluation.harness import evaluate_task
from layerpuzzle.jobs import run_job
from layerpuzzle.models.sources import load_model


def main(job):
    p = job.params
    model, tok = load_model(job.input.ckpt, dtype=p.dtype, device=p.device)
    flat, raw = evaluate_task(model, tok, p.task, mirror=resolve_mirror(p.mirror or None), limit=p.limit,
                              batch_size=p.batch_size, max_length=p.max_length, seed=p.seed, device=None)
    write_json(job.output.raw, raw)
    write_json(job.output.result, flat)
    return {"value": flat["value"], "n_samples": flat["n_samples"]}


run_job(snakemake, main)  # noqa: F821
