# The LaCo paper's tables (docs/tables.md, "The LaCo paper's tables"): Tables 1/2/22 (benchmarks), 3 (PPL),
# 4 (pruning time), 5/20 (memory, speed) for Dense, LLM-Pruner, SliceGPT and LaCo on laco_tables.models, the
# paper's numbers beside ours. Which checkpoints: PLAN.laco_table_checkpoints (config laco_tables).
# Logic: layerpuzzle.tables.laco.


rule laco_tables:
    input:
        metrics=lambda wc: PLAN.laco_table_metrics(),
        efficiency=lambda wc: PLAN.laco_table_efficiency(),
        checkpoints=lambda wc: PLAN.laco_table_pruning(),
    output:
        tables=reported(PLAN.laco_table_outputs(), "laco_tables.rst", "LaCo Tables 1-5, 20, 22", "LaCo"),
        prov=f"{TABLES}/laco_tables.prov.json",
    params:
        entries=laco_table_entries(),
        model_order=PLAN.laco_table_models(),
        paper_names={m: config["models"][m].get("paper_name") for m in PLAN.laco_table_models()},
        paper_model=config["laco_tables"]["paper_model"],
    log:
        "logs/tables/laco_tables.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/laco_tables.py"


# one name per paper table (each builds all of them: one job reads the same records)
for _stem in ("laco_table01", "laco_table02", "laco_table22", "laco_table03_ppl", "laco_table04_time",
              "laco_table05_20_efficiency"):

    rule:
        name:
            _stem
        input:
            PLAN.table_files(_stem) + PLAN.table_files(f"{_stem}_vs_paper"),
