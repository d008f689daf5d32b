"""Full-parameter causal-LM post-training of any checkpoint (rule lm_posttrain)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.posttrain_jobs import run_lm_posttrain_job


def main(job):
    p = job.params
    return run_lm_posttrain_job(
        source_dir=job.input.source,
        data_path=job.input.data,
        out_dir=job.output.ckpt,
        state_dir=p.state_dir,
        variant=dict(p.variant),
        run_params={"data": dict(p.data)},
        base_model=p.model,
        source_id=p.source,
        slug=p.slug,
        dtype=p.dtype,
        device=p.device,
        checkpoint_every=p.checkpoint_every,
    )


run_job(snakemake, main)  # noqa: F821
