"""Quantize or sparsify one checkpoint with llm-compressor's oneshot (rule oneshot_compress)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.quantize.pipeline import run_oneshot


def main(job):
    p = job.params
    return run_oneshot(job.input.ckpt, job.input.calib, job.output.ckpt, model_name=p.model, source=p.source,
                       scheme=p.scheme, calibration=dict(p.calibration), batch_size=p.batch_size, dtype=p.dtype,
                       device=p.device, threads=job.threads)


run_job(snakemake, main)  # noqa: F821
