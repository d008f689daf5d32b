"""MKA's NPIB layer-similarity matrices of one model, one per configured kernel (rule mka_similarity)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.mka.pipeline import run_similarity


def main(job):
    p = job.params
    return run_similarity(job.input.model, model_name=p.model, kernels=list(p.kernels), data=dict(p.data),
                          manifold=dict(p.manifold), npib=dict(p.npib), mirror=p.mirror or None,
                          outputs={"npib": list(job.output.npib), "embeddings": list(job.output.embeddings)},
                          dtype=p.dtype, device=p.device)


run_job(snakemake, main)  # noqa: F821
