"""One of the CoMe ablation tables 11-14 beside the paper's numbers (rule come_ablation_table)."""
import json
from pathlib import Path

from layerpuzzle.jobs import run_job
from layerpuzzle.tables.come_ablations import ABLATIONS, ablation_table, caption
from layerpuzzle.tables import write_table


def main(job):
    ablation = ABLATIONS[job.params.stem]
    records = [json.loads(Path(p).read_text()) for p in job.input.metrics]
    dense = {r["model"]: r for r in (json.loads(Path(p).read_text()) for p in job.input.dense)}
    points = [(m, v, r) for (m, v), r in zip(job.params.points, records)]
    table = ablation_table(ablation, points, dense)
    write_table(table, job.output.table[0].rsplit(".", 1)[0], caption=caption(ablation))
    return {"rows": len(table)}


run_job(snakemake, main)  # noqa: F821
