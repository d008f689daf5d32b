"""Layer x layer similarity matrices of one checkpoint (rule layer_similarity; MKA Figs. 3 and 5)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.mka.analyses import run_layer_similarity


def main(job):
    p = job.params
    return run_layer_similarity(job.input.ckpt, job.input.calib, job.output.matrices, measures=list(p.measures),
                                batch_size=p.batch_size, dtype=p.dtype, device=p.device)


run_job(snakemake, main)  # noqa: F821
