# LM post-training of any checkpoint and re-pruning (docs/methods/lm_posttrain.md; LaCo App. C, Fig. 3,
# Tables 6, 21, 24). Not part of all_tables: extra targets laco_table06_24_posttrain, laco_fig3_loss, laco_table21.
#
# 1. lm_posttrain: checkpoint id {source}/posttrain/{slug} ({source} = dense or <method>/<target>/<variant>,
#    {slug} = a posttrain_lm variant's path component), built in results/{model}/posttrain/lm/{source}/{slug}
#    (PLAN.checkpoint_dir) from the source checkpoint and the posttrain_lm.data chunks (rule calibration_set).
#    RESUMABLE: the resume state lives in results/{model}/train_state/lm_posttrain/{source}/{slug}/, not a
#    declared output, and is removed after success (layerpuzzle.distill.trainer).
#    Evaluation: results/{model}/eval/{source}/posttrain/{slug}/metrics.json (rule evaluate_checkpoint).
# 2. Re-pruning: a derived model (models.<name>: {source: derived, derived_from, checkpoint}) gets that
#    checkpoint as its dense directory (rule derive_model, rules/models.smk); every method then runs on it.
# 3. Tables (PLAN.laco_table06_rows / laco_table21_rows) with the paper's numbers beside ours.


rule lm_posttrain:
    input:
        source=lambda wc: PLAN.checkpoint_dir(wc.model, wc.source),
        data=lambda wc: PLAN.posttrain_data_path(wc.model),
    output:
        ckpt=directory("results/{model}/posttrain/lm/{source}/{slug}"),
    wildcard_constraints:
        source=BASE_CKPT_RE,
        slug=SLUG_RE,
    params:
        model=lambda wc: wc.model,
        source=lambda wc: wc.source,
        slug=lambda wc: wc.slug,
        # raises (naming the key, value and what is allowed) for a source or slug this config cannot build
        check=lambda wc: PLAN.check_source(wc.model, f"{wc.source}/posttrain/{wc.slug}", "{source}/posttrain/{slug}"),
        variant=lambda wc: PLAN.posttrain_variant(wc.slug),
        data=config["posttrain_lm"]["data"],
        checkpoint_every=config["posttrain_lm"]["checkpoint_every"],
        state_dir=lambda wc: f"results/{wc.model}/train_state/lm_posttrain/{wc.source}/{wc.slug}",
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/posttrain/lm/{source}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/lm/{source}/{slug}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/lm_posttrain.py"


# ------------------------------------------------------------------ LaCo Tables 6/24, Fig. 3, Table 21
LACO_PAPER = Path(workflow.basedir) / "resources" / "paper" / "laco_mka"


rule laco_table06_24_posttrain_table:
    input:
        **laco_table_inputs("table06_reprune"),
        paper6=str(LACO_PAPER / "laco_table06_posttrain_reprune.csv"),
        paper24=str(LACO_PAPER / "laco_table24_posttrain_detail.csv"),
    output:
        table=reported(PLAN.table_files("laco_table06_24_posttrain"), "laco_table06_24_posttrain.rst",
                       "LaCo Tables 6/24: post-training and re-pruning", "LaCo Tables 6/24"),
        vs=reported(PLAN.table_files("laco_table06_24_posttrain_vs_paper"), "laco_table06_24_posttrain.rst",
                    "LaCo Tables 6/24: post-training and re-pruning", "LaCo Tables 6/24 vs paper"),
        prov=f"{TABLES}/laco_table06_24_posttrain.prov.json",
    params:
        rows=PLAN.laco_table06_rows(),
        derived=list(PLAN.derived_models()),
        kind="table06",
    log:
        "logs/tables/laco_table06_24_posttrain.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/laco_posttrain_table.py"


rule laco_table21_table:
    input:
        **laco_table_inputs("table21"),
        paper21=str(LACO_PAPER / "laco_table21_posttrain_55pct.csv"),
    output:
        table=reported(PLAN.table_files("laco_table21"), "laco_table21.rst",
                       "LaCo Table 21: LaCo vs LLM-Pruner, both post-trained", "LaCo Table 21"),
        vs=reported(PLAN.table_files("laco_table21_vs_paper"), "laco_table21.rst",
                    "LaCo Table 21: LaCo vs LLM-Pruner, both post-trained", "LaCo Table 21 vs paper"),
        prov=f"{TABLES}/laco_table21.prov.json",
    params:
        rows=PLAN.laco_table21_rows(),
        derived=list(PLAN.derived_models()),
        kind="table21",
    log:
        "logs/tables/laco_table21.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/laco_posttrain_table.py"


rule laco_fig3_loss_figure:
    input:
        ckpt=lambda wc: [PLAN.checkpoint_dir(r["model"], r["checkpoint"])
                         for r in PLAN.laco_posttrain_rows("table06_reprune", required=True)
                         if r["row"] == "LaCo+post-train"],
    output:
        png=report(f"{FIGURES}/laco_fig3_loss.png", caption="../report/captions/laco_fig3_loss.rst",
                   category="LaCo Fig. 3", subcategory="all models", labels={"figure": "LaCo Fig. 3"}),
        prov=f"{FIGURES}/laco_fig3_loss.prov.json",
    log:
        "logs/figures/laco_fig3_loss.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/laco_fig3_loss.py"


rule laco_table06_24_posttrain:
    input:
        rules.laco_table06_24_posttrain_table.output,
        rules.laco_fig3_loss_figure.output,


rule laco_fig3_loss:
    input:
        rules.laco_fig3_loss_figure.output,


rule laco_table21:
    input:
        rules.laco_table21_table.output,
