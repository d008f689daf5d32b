# The reproducibility audit and the report description.
#
#   snakemake audit          (after all_tables; NOT part of all_tables)
#
# Rule audit observes results/ and never makes any of it: it has no file inputs, so
# a tampered artifact is found as it is instead of being silently re-made first.
# It re-runs whenever anything under results/ changed since the last audit
# (params.results_state, a digest of paths, sizes and mtimes) or its settings changed.
# Outputs: results/audit/verdict.json only when the audit passes; report.md and
# audit.json are declared as logs so that they survive a failing audit (Snakemake
# deletes the outputs of a failed job, never its logs). Side files in results/audit/:
# config.yaml (the effective config the checks re-use), reexecute/*.log, scratch/
# (kept for jobs that did not reproduce), snakemake-summary.tsv,
# snakemake-list-changes-{params,code,input}.txt. Logic: layerpuzzle.audit.
from layerpuzzle.audit.manifest import tree_state

AUDIT_DIR = "results/audit"

# the description at the top of `snakemake --report report.html`
report: "../report/workflow.rst"


rule audit:
    output:
        verdict=f"{AUDIT_DIR}/verdict.json",
    log:
        main="logs/audit/audit.log",
        report=f"{AUDIT_DIR}/report.md",
        json=f"{AUDIT_DIR}/audit.json",
    params:
        snakefile=workflow.main_snakefile,
        expected=lambda wc: PLAN.all_table_outputs(),  # the audit fails when one is missing
        mirror=MIRROR_PARAM,
        results_state=lambda wc: tree_state(".", ignore=config["audit"]["ignore"]),
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    retries: 0
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/audit.py"
