"""LLM-Pruner checkpoint of one model, target and variant (rule llm_pruner)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.llm_pruner.pipeline import run_llm_pruner


def main(job):
    p = job.params
    return run_llm_pruner(job.input.model, job.input.calib, job.output.ckpt, model_name=p.model,
                          target_fraction=p.target, variant=dict(p.variant), calibration=dict(p.calibration),
                          batch_size=p.batch_size, dtype=p.dtype, device=p.device)


run_job(snakemake, main)  # noqa: F821
