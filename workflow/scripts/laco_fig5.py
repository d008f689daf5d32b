"""LaCo Fig. 5a/5b: cosine of adjacent layers' outputs and of merged layers vs the layer they replace (rule laco_fig5)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.laco_analysis_jobs import fig5_job


def main(job):
    p = job.params
    out = {k: job.output[k] for k in ("fig5a_png", "fig5a_csv", "fig5b_png", "fig5b_csv")}
    return fig5_job(job.input.dense, out, p.model, n_sentences=p.n_sentences, mirror=p.mirror or None,
                    device=p.device)


run_job(snakemake, main)  # noqa: F821
