"""Gather one checkpoint's evaluation into metrics.json (rule collect_metrics)."""
from layerpuzzle.atomic import write_json
from layerpuzzle.evaluation.metrics import collect_metrics
from layerpuzzle.jobs import run_job


def main(job):
    record = collect_metrics(job.params.model, job.params.ckpt, job.input.ckpt, job.input.ppl, job.input.tasks)
    write_json(job.output.metrics, record)


run_job(snakemake, main)  # noqa: F821
