"""Perplexity and the seven benchmarks of one checkpoint (rule evaluate_checkpoint)."""
from layerpuzzle.evaluation.suite import evaluate_checkpoint
from layerpuzzle.jobs import run_job


def main(job):
    p = job.params
    return evaluate_checkpoint(
        job.input.ckpt,
        model_name=p.model,
        ckpt_id=p.ckpt,
        perplexity=dict(p.perplexity),
        tasks=dict(p.tasks),
        batch_size=p.batch_size,
        max_length=p.max_length,
        mirror=p.mirror or None,
        seed=p.seed,
        dtype=p.dtype,
        device=p.device,
        outputs=job.output,
    )


run_job(snakemake, main)  # noqa: F821
