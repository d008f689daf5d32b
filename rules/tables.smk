# Stage 5: the paper's tables from our artifacts, with the paper's numbers beside ours.



rule table3_sparsity:
    input:
        configs=table3_config_inputs,
        paper_config=lambda w: [str(PAPER_CONFIG)] if table3_paper_models() else [],
    output:
        # CSV and Markdown in `snakemake --report` (category = table)
        table=reported(PLAN.table_files("table03_sparsity"), "table03_sparsity.rst", "Table 3: sparsity", "Table 3"),
        vs_paper=reported(PLAN.table_files("table03_vs_paper"), "table03_sparsity.rst", "Table 3: sparsity",
                          "Table 3 vs paper"),
        prov=f"{TABLES}/table03_sparsity.prov.json",
    params:
        models={
            m: {
                "architecture": config["models"][m].get("architecture"),
                "paper_name": config["models"][m].get("paper_name"),
                "config_json": None if config["models"][m].get("architecture") else f"{get_model_dir(m)}/config.json",
            }
            for m in config["run"]["table3_models"]
        }
        | table3_paper_models(),
        targets=[round(t * 100) for t in config["run"]["table3_targets"]],
    log:
        f"logs/tables/table03_sparsity.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/table3_sparsity.py"


rule results_table:
    input:
        metrics=lambda wc: PLAN.all_metrics(),
    output:
        table=reported(PLAN.table_files("results"), "results.rst", "Tables 8-10: results", "Results"),
        vs_paper=reported(PLAN.table_files("results_vs_paper"), "results.rst", "Tables 8-10: results", "Results vs paper"),
        prov=f"{TABLES}/results.prov.json",
    params:
        model_order=PLAN.run_models,
        paper_names={m: config["models"][m].get("paper_name") for m in PLAN.run_models},
    log:
        f"logs/tables/results.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/results_table.py"
