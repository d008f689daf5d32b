"""FuseGPT-MI or FuseGPT-MI+F checkpoint of one model, target and variant (rules fusegpt_mi, fusegpt_mif)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.fusegpt.pipeline import run_fusegpt


def main(job):
    p = job.params
    extra = dict(group_size=p.group_size, coef_rank=p.coef_rank, lora_rank=p.lora_rank) if p.fuse else {}
    return run_fusegpt(job.input.model, job.input.calib, job.output.ckpt, model_name=p.model, target_fraction=p.target,
                       fuse=p.fuse, variant=dict(p.variant), calibration=dict(p.calibration), batch_size=p.batch_size,
                       offload_states=p.offload_states, seed=p.seed, dtype=p.dtype, device=p.device, **extra)


run_job(snakemake, main)  # noqa: F821
