"""The results table (layout of Tables 8–10) with the paper beside ours (rule results_table)."""
import json

from layerpuzzle.jobs import run_job
from layerpuzzle.tables import compare_results_with_paper, results_table, write_table


def main(job):
    records = [json.load(open(p)) for p in job.input.metrics]
    order = list(job.params.model_order)
    write_table(results_table(records, model_order=order), job.output.table[0].rsplit(".", 1)[0],
                caption="Pruning results (layout of the paper's Tables 8-10); scores in %, PPL on C4 and WikiText-2")
    paper_names = {m: n for m, n in job.params.paper_names.items() if n}
    write_table(compare_results_with_paper(records, paper_names, model_order=order),
                job.output.vs_paper[0].rsplit(".", 1)[0],
                caption="Our results beside the paper's (same method and target; diff = ours - paper)")


run_job(snakemake, main)  # noqa: F821
