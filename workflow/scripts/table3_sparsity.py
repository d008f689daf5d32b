"""Table 3: parameters and sparsity per model and target (rule table3_sparsity)."""
import json

from layerpuzzle.jobs import run_job
from layerpuzzle.sparsity import ArchSpec
from layerpuzzle.tables import compare_sparsity_table, sparsity_table, write_table


def main(job):
    specs, paper_names = {}, {}
    for name, entry in job.params.models.items():
        if entry["architecture"]:
            specs[name] = ArchSpec.from_dict(entry["architecture"])
        else:
            with open(entry["config_json"]) as f:
                specs[name] = ArchSpec.from_hf_config(json.load(f))
        if entry["paper_name"]:
            paper_names[name] = entry["paper_name"]
    targets = tuple(job.params.targets)
    write_table(sparsity_table(specs, paper_names, targets=targets), job.output.table[0].rsplit(".", 1)[0],
                caption="Table 3: parameters and sparsity per model and target (docs/sparsity.md)")
    write_table(compare_sparsity_table(specs, paper_names), job.output.vs_paper[0].rsplit(".", 1)[0],
                caption="Table 3, ours beside the paper (paper models only)")


run_job(snakemake, main)  # noqa: F821
