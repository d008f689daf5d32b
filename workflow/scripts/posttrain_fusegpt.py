"""FuseGPT with its group-local post-training (rule fusegpt_train)."""
from layerpuzzle.distill.runs import run_fusegpt_job
from layerpuzzle.jobs import run_job


def main(job):
    p = job.params
    return run_fusegpt_job(
        dense_dir=job.input.model,
        data_path=job.input.data,
        out_dir=job.output.ckpt,
        state_dir=p.state_dir,
        variant=dict(p.variant),
        run_params={"data": dict(p.data)},
        target_fraction=p.target,
        base_model=p.model,
        dtype=p.dtype,
        device=p.device,
        checkpoint_every=p.checkpoint_every,
    )


run_job(snakemake, main)  # noqa: F821
