"""LaCo Tables 6/24 and Table 21 with the paper's numbers beside ours (rules laco_table06_24_posttrain_table,
laco_table21_table)."""
import json
from pathlib import Path

from layerpuzzle.jobs import run_job
from layerpuzzle.tables import laco_posttrain as lp
from layerpuzzle.tables.render import write_table


def main(job):
    rows = list(job.params.rows)
    derived = set(job.params.derived)
    bases = iter(job.input.bases)
    base_of = {}
    for r in rows:
        if r["model"] in derived and r["model"] not in base_of:
            base_of[r["model"]] = next(bases)
    records = [lp.row_record(r, json.loads(Path(m).read_text()), c, base_of.get(r["model"]))
               for r, m, c in zip(rows, job.input.metrics, job.input.ckpts)]
    ours = lp.ours_table(records)
    stem = job.output.table[0].rsplit(".", 1)[0]
    vs_stem = job.output.vs[0].rsplit(".", 1)[0]
    if job.params.kind == "table06":
        paper = lp.load_paper("laco_table24_posttrain_detail.csv").merge(
            lp.load_paper("laco_table06_posttrain_reprune.csv")[["model", "method", "avg"]], on=["model", "method"],
            how="left")
        vs = lp.vs_paper(ours, paper, lp.TABLE06_PAPER_ROWS, key="method")
        caption = ("LaCo Tables 6/24: LaCo, LaCo + LM post-training, and LaCo again on the post-trained model; "
                   "scores in %, params kept of the original model, tokens seen in post-training (LaCo: ~1 B).")
    else:
        vs = lp.vs_paper(ours, lp.load_paper("laco_table21_posttrain_55pct.csv"), lp.table21_paper_rows(rows),
                         key="pruner")
        caption = ("LaCo Table 21: the configured pruned checkpoints at the same kept fraction, each before and "
                   "after the same LM post-training; scores in %.")
    write_table(ours, stem, caption=caption)
    write_table(vs, vs_stem, caption=caption + f" Ours vs the paper's {lp.PAPER_MODEL}, per task both report.")
    return {"rows": len(ours)}


run_job(snakemake, main)  # noqa: F821
