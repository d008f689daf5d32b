"""A checkpoint of another model as this model's dense directory (rule derive_model)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.models.derived import derive_model


def main(job):
    derive_model(job.input.ckpt, job.output.model, list(job.params.chain))
    return {"chain": list(job.params.chain)}


run_job(snakemake, main)  # noqa: F821
