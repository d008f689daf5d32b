"""Prune and train from the dense model: LLM-Streamline (rule streamline), FuseGPT (rule fusegpt_train)."""
from layerpuzzle.posttrain_jobs import run_fusegpt_job, run_streamline_job
from layerpuzzle.jobs import run_job

JOBS = {"streamline": run_streamline_job, "fusegpt_train": run_fusegpt_job}


def main(job):
    p = job.params
    return JOBS[p.method](
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
