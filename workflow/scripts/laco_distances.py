"""LaCo Table 14 for one checkpoint: KL and linear / RBF CKA vs the dense model (rule laco_distances)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.laco_analysis_jobs import distances_job


def main(job):
    p = job.params
    rec = distances_job(job.input.dense, job.input.pruned, job.output.json, n_sentences=p.n_sentences,
                        mirror=p.mirror or None, device=p.device)
    return {k: rec[k] for k in ("kl_divergence", "linear_cka", "kernel_cka", "n_tokens")}


run_job(snakemake, main)  # noqa: F821
