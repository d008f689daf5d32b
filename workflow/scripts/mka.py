"""MKA checkpoint of one model, target and variant (rule mka)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.mka.pipeline import run_mka


def main(job):
    p = job.params
    return run_mka(job.input.model, job.input.npib, job.output.ckpt, model_name=p.model, target_fraction=p.target,
                   variant=dict(p.variant), beta=p.beta, dtype=p.dtype, device=p.device)


run_job(snakemake, main)  # noqa: F821
