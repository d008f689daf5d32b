"""One CoMe or CoMe-P checkpoint (rules come and come_p); logic in layerpuzzle.methods.come.job."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.come.job import build_checkpoint


def main(job):
    p = job.params
    return build_checkpoint(
        p.key,
        model_dir=job.input.model,
        calib_path=job.input.calib,
        out_dir=job.output.ckpt,
        model_name=p.model,
        settings=dict(p.settings),
        execution=dict(p.execution),
        calibration=dict(p.calibration),
        target_fraction=p.target_fraction,
        variant=p.label,
        model_note=p.note or None,
        dtype=p.dtype,
        device=p.device,
    )


run_job(snakemake, main)  # noqa: F821
