"""MKA's NPIB layer-similarity matrix of one model and kernel (rule mka_similarity)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.mka.pipeline import run_similarity


def main(job):
    p = job.params
    return run_similarity(job.input.model, model_name=p.model, kernel=p.kernel, data=dict(p.data),
                          manifold=dict(p.manifold), npib=dict(p.npib), mirror=p.mirror or None,
                          outputs=dict(job.output), dtype=p.dtype, device=p.device)


run_job(snakemake, main)  # noqa: F821
