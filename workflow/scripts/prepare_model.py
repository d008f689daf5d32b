"""Write the dense model as a safetensors HF directory (rule prepare_model)."""
from pathlib import Path

from layerpuzzle.atomic import atomic_dir
from layerpuzzle.jobs import run_job
from layerpuzzle.models.sources import prepare_model


def main(job):
    with atomic_dir(job.output.model) as tmp:
        prepare_model(dict(job.params.spec), tmp, Path(job.params.download_dir))


run_job(snakemake, main)  # noqa: F821  (injected by Snakemake)
