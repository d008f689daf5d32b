"""LaCo Table 14: KL and CKA of the final hidden states, dense vs pruned, beside the paper's (rule laco_table14_table)."""
import json
from pathlib import Path

from layerpuzzle.jobs import run_job
from layerpuzzle.tables import write_table
from layerpuzzle.tables.laco_grids import TABLE14_CAPTION, laco_distance_table, load_paper_table14


def main(job):
    records = [json.loads(Path(p).read_text()) for p in job.input.records]
    table = laco_distance_table([(m, c, r) for (m, c), r in zip(job.params.points, records)], load_paper_table14())
    write_table(table, job.output.table[0].rsplit(".", 1)[0], caption=TABLE14_CAPTION, decimals=4)
    return {"rows": len(table)}


run_job(snakemake, main)  # noqa: F821
