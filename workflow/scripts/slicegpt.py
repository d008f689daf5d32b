"""SliceGPT checkpoint of one model, target and variant (rule slicegpt)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.slicegpt.pipeline import run_slicegpt


def main(job):
    p = job.params
    return run_slicegpt(job.input.model, job.input.calib, job.output.ckpt, model_name=p.model,
                        target_fraction=p.target, variant=dict(p.variant), calibration=dict(p.calibration),
                        batch_size=p.batch_size, seed=p.rotation_seed, dtype=p.dtype, device=p.device)


run_job(snakemake, main)  # noqa: F821
