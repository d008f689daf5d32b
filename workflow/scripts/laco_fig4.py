"""LaCo Fig. 4: Frobenius distance of adjacent layers' weight matrices (rule laco_fig4)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.laco_analysis_jobs import fig4_job


def main(job):
    return fig4_job(job.input.dense, job.output.png, job.output.csv,
                    f"{job.params.model}: distance between adjacent layers' weight matrices (LaCo Fig. 4)")


run_job(snakemake, main)  # noqa: F821
