"""CoMe Table 4: removal orders at ~10/20/30 %, the paper's beside ours (rule table04_layer_order)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.tables.table4 import order_entries, table4_vs_paper, table4_wide
from layerpuzzle.tables import write_table


def main(job):
    p = job.params
    entries = order_entries(list(p.entries), dict(p.model_dirs), list(p.levels))
    names = dict(p.paper_names)
    write_table(table4_wide(entries, names), job.output.table[0].rsplit(".", 1)[0],
                caption="Removal order of each layer pruning method (0-based layers, increments of the "
                        "~10/20/30 % levels separated by '/'; 'paper' columns: CoMe Table 4)")
    write_table(table4_vs_paper(entries, names), job.output.vs_paper[0].rsplit(".", 1)[0],
                caption="Removed layers at each Table 4 level, ours and the paper's")
    return {"entries": len(entries)}


run_job(snakemake, main)  # noqa: F821
