"""LaCo checkpoint of one model, target and variant (rule laco)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.laco.pipeline import run_laco


def main(job):
    p = job.params
    return run_laco(job.input.model, job.output.ckpt, model_name=p.model, target_fraction=p.target,
                    variant=dict(p.variant), search=dict(p.search), sentences=list(p.sentences),
                    dtype=p.dtype, device=p.device)


run_job(snakemake, main)  # noqa: F821
