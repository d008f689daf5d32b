# Stage 3 (CoMe): progressive concatenation merging (Alg. 1) and CoMe-P (Alg. 2) as cached
# checkpoints, and the ablation tables 11-14. Logic: layerpuzzle.methods.come.
#   results/{model}/pruned/come/{target}/{variant}     (rule come)
#   results/{model}/pruned/come_p/{target}/{variant}   (rule come_p)
# {variant} is `default` or the variant's explicit keys (`p=inf`, `calib_rows=16`, ...):
# a configured variant, or any slug of the keys in config/methods/come*.schema.yaml
# (the ablation grid points), so one checkpoint can be rebuilt by its path.
from layerpuzzle.tables.come_ablations import ABLATIONS


rule come:
    input:
        model=get_model_dir,
        calib=come_calib_path("come"),
    output:
        ckpt=directory("results/{model}/pruned/come/{target}/{variant}"),
    wildcard_constraints:
        target=TARGET_RE,
        variant=SLUG_RE,
    params:
        key="come",
        **come_rule_params("come"),
    log:
        "logs/{model}/pruned/come/{target}/{variant}.log",
    benchmark:
        "benchmarks/{model}/pruned/come/{target}/{variant}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/come.py"


rule come_p:
    input:
        model=get_model_dir,
        calib=come_calib_path("come_p"),
    output:
        ckpt=directory("results/{model}/pruned/come_p/{target}/{variant}"),
    wildcard_constraints:
        target=TARGET_RE,
        variant=SLUG_RE,
    params:
        key="come_p",
        **come_rule_params("come_p"),
    log:
        "logs/{model}/pruned/come_p/{target}/{variant}.log",
    benchmark:
        "benchmarks/{model}/pruned/come_p/{target}/{variant}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/come.py"


# ------------------------------------------------------------------ ablations (Tables 11-14)
# Grid points: PLAN.come_ablation_points (each a `come` checkpoint named by its settings).
rule come_ablation_table:
    input:
        metrics=lambda wc: [PLAN.metrics_path(m, c) for m, _, c in PLAN.come_ablation_points(wc.stem)],
        dense=lambda wc: sorted({PLAN.metrics_path(m, "dense") for m, _, _ in PLAN.come_ablation_points(wc.stem)}),
    output:
        table=reported([f"{TABLES}/{{stem}}.{ext}" for ext in ("csv", "md", "tex")],
                       "come_ablations.rst", "Tables 11-14: CoMe ablations", "{stem}"),
        prov=f"{TABLES}/{{stem}}.prov.json",
    wildcard_constraints:
        stem="|".join(ABLATIONS),
    params:
        stem=lambda wc: wc.stem,
        points=lambda wc: [[m, v] for m, v, _ in PLAN.come_ablation_points(wc.stem)],
    log:
        "logs/tables/{stem}.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/come_ablation_table.py"


rule table11_p:
    input:
        PLAN.table_files("table11_p"),


rule table12_calib_scale:
    input:
        PLAN.table_files("table12_calib_scale"),


rule table13_merge_granularity:
    input:
        PLAN.table_files("table13_merge_granularity"),


rule table14_calib_dataset:
    input:
        PLAN.table_files("table14_calib_dataset"),
