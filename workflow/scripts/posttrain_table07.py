"""Table 7: the post-training budgets actually run, beside the paper's (rule table07_posttrain)."""
import pandas as pd

from layerpuzzle.tables.posttrain import table7, training_info
from layerpuzzle.jobs import run_job
from layerpuzzle.tables.render import write_table


def main(job):
    infos = [training_info(d) for d in job.input.ckpts]
    df = table7(infos, pd.read_csv(job.input.paper), model_order=list(job.params.model_order))
    write_table(df, job.output.table[0].rsplit(".", 1)[0],
                caption="Post-training settings (Table 7): T_layer = #Iterations x #Layers x #Epochs x #Steps x "
                        "BatchSize x TokenLength, ours (from each run's training.json) beside the paper's")
    return {"rows": len(df)}


run_job(snakemake, main)  # noqa: F821
