"""The post-training comparison table (rule table_posttrain)."""
import json

from layerpuzzle.tables.posttrain import posttrain_table, training_info
from layerpuzzle.jobs import run_job
from layerpuzzle.tables.render import write_table
from layerpuzzle.tables.results import method_label


def main(job):
    records = [json.load(open(p)) for p in job.input.metrics]
    t_layers = {}
    for d in job.input.ckpts:
        info = training_info(d)
        t_layers[(info["model"], method_label(info["method"], info["variant"]))] = info["budget"]["T_layer"]
    df = posttrain_table(records, t_layers, model_order=list(job.params.model_order))
    write_table(df, job.output.table[0].rsplit(".", 1)[0],
                caption="Post-training comparison: Dense, CoMe (no post-training), CoMe-mp, CoMe-sp, LLM-Streamline, "
                        "FuseGPT; scores in %, PPL on C4 and WikiText-2, T_layer = layer-token updates (Table 7). "
                        "The paper's post-training table is in its main text, which was not available.")
    return {"rows": len(df)}


run_job(snakemake, main)  # noqa: F821
