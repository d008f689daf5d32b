"""FuseGPT calibration windows of one model (rule fusegpt_calibration)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.fusegpt.pipeline import build_fusegpt_calibration


def main(job):
    return build_fusegpt_calibration(job.input.model, job.params.fcalib, job.output.calib, job.params.mirror or None)


run_job(snakemake, main)  # noqa: F821
