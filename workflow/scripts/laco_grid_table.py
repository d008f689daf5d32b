"""One LaCo ratio-sweep or ablation table beside the paper's numbers (rule laco_grid_table)."""
import json
from pathlib import Path

from layerpuzzle.jobs import run_job
from layerpuzzle.tables import write_table
from layerpuzzle.tables.laco_grids import laco_grid_tables


def main(job):
    records = [json.loads(Path(p).read_text()) for p in job.input.metrics]
    dense = {r["model"]: r for r in (json.loads(Path(p).read_text()) for p in job.input.dense)}
    table, caption = laco_grid_tables(job.params.stem, [(m, label, r) for (m, label), r in zip(job.params.points, records)],
                                      dense)
    write_table(table, job.output.table[0].rsplit(".", 1)[0], caption=caption)
    return {"rows": len(table)}


run_job(snakemake, main)  # noqa: F821
