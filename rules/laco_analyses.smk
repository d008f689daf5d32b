# LaCo's own ratio sweeps, ablations and analyses (LaCo Tables 7/25, 10-18, Figs. 4-5; docs/analyses.md).
# Extra targets only (never in all_tables): laco_table07_25_ratios, laco_ablations (Tables 10-13, 15-18),
# laco_table14, laco_figures. Grid points are LaCo checkpoints named by their settings
# (PLAN.laco_grid_points), built by rule laco and evaluated by the evaluation rule.
# Logic: layerpuzzle.methods.laco.grids, layerpuzzle.tables.laco_grids, layerpuzzle.laco_analysis_jobs.
from layerpuzzle.methods.laco.grids import GRID_TABLES, RATIO_STEM


rule laco_grid_table:
    input:
        metrics=lambda wc: [PLAN.metrics_path(m, c) for m, _, c in PLAN.laco_grid_points(wc.stem)],
        dense=lambda wc: sorted({PLAN.metrics_path(m, "dense") for m, _, _ in PLAN.laco_grid_points(wc.stem)}),
    output:
        table=reported([f"{TABLES}/{{stem}}.{ext}" for ext in ("csv", "md", "tex")],
                       "laco_analyses.rst", "LaCo: ratios and ablations", "{stem}"),
        prov=f"{TABLES}/{{stem}}.prov.json",
    wildcard_constraints:
        stem="|".join([RATIO_STEM, *GRID_TABLES]),
    params:
        stem=lambda wc: wc.stem,
        points=lambda wc: [[m, label] for m, label, _ in PLAN.laco_grid_points(wc.stem)],
    log:
        "logs/tables/{stem}.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/laco_grid_table.py"


rule laco_distances:
    input:
        dense=get_model_dir,
        pruned="results/{model}/pruned/{ckpt}",
    output:
        json="results/{model}/analyses/laco_distances/{ckpt}.json",
        prov="results/{model}/analyses/laco_distances/{ckpt}.prov.json",
    wildcard_constraints:
        ckpt=CKPT_RE,
    params:
        n_sentences=merge_cfg("laco")["ablations"]["distance_sentences"],
        mirror=MIRROR_PARAM,
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/analyses/laco_distances/{ckpt}.log",
    benchmark:
        "benchmarks/{model}/analyses/laco_distances/{ckpt}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/laco_distances.py"


rule laco_table14_table:
    input:
        records=PLAN.laco_distance_inputs(),
    output:
        table=reported(PLAN.table_files("laco_table14"), "laco_analyses.rst", "LaCo: ratios and ablations",
                       "laco_table14"),
        prov=f"{TABLES}/laco_table14.prov.json",
    params:
        points=[[m, c] for m in PLAN.laco_ablation_models() for c in PLAN.laco_distance_checkpoints(m)],
    log:
        "logs/tables/laco_table14.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/laco_table14.py"


rule laco_fig4:
    input:
        dense=get_model_dir,
    output:
        png=report(f"{FIGURES}/{{model}}/laco/fig4_weight_distances.png", caption="../report/captions/laco_figures.rst",
                   category="Figures: LaCo", subcategory="{model}", labels={"figure": "Fig. 4"}),
        csv=f"{FIGURES}/{{model}}/laco/fig4_weight_distances.csv",
        prov=f"{FIGURES}/{{model}}/laco/fig4.prov.json",
    params:
        model=lambda wc: wc.model,
    log:
        "logs/{model}/figures/laco_fig4.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/laco_fig4.py"


rule laco_fig5:
    input:
        dense=get_model_dir,
    output:
        fig5a_png=report(f"{FIGURES}/{{model}}/laco/fig5a_adjacent_cosine.png",
                         caption="../report/captions/laco_figures.rst", category="Figures: LaCo",
                         subcategory="{model}", labels={"figure": "Fig. 5a"}),
        fig5a_csv=f"{FIGURES}/{{model}}/laco/fig5a_adjacent_cosine.csv",
        fig5b_png=report(f"{FIGURES}/{{model}}/laco/fig5b_merged_cosine.png",
                         caption="../report/captions/laco_figures.rst", category="Figures: LaCo",
                         subcategory="{model}", labels={"figure": "Fig. 5b"}),
        fig5b_csv=f"{FIGURES}/{{model}}/laco/fig5b_merged_cosine.csv",
        prov=f"{FIGURES}/{{model}}/laco/fig5.prov.json",
    params:
        model=lambda wc: wc.model,
        n_sentences=20,  # LaCo Fig. 5: 20 Wikipedia sentences
        mirror=MIRROR_PARAM,
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/figures/laco_fig5.log",
    benchmark:
        "benchmarks/{model}/figures/laco_fig5.tsv"
    threads: 1
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/laco_fig5.py"


rule laco_table07_25_ratios:
    input:
        PLAN.table_files(RATIO_STEM),


rule laco_ablations:
    input:
        [p for stem in GRID_TABLES for p in PLAN.table_files(stem)],


rule laco_table14:
    input:
        PLAN.table_files("laco_table14"),


rule laco_figures:
    input:
        [p for m in PLAN.laco_ablation_models() for k, p in PLAN.laco_figure_files(m).items() if k != "fig4_csv"]
        + [PLAN.laco_figure_files(m)["fig4_csv"] for m in PLAN.laco_ablation_models()],


rule laco_table10_c:
    input:
        PLAN.table_files("laco_table10_c"),


rule laco_table11_i:
    input:
        PLAN.table_files("laco_table11_i"),


rule laco_table12_d:
    input:
        PLAN.table_files("laco_table12_d"),


rule laco_table13_t:
    input:
        PLAN.table_files("laco_table13_t"),


rule laco_table15_drop:
    input:
        PLAN.table_files("laco_table15_drop"),


rule laco_table16_rule:
    input:
        PLAN.table_files("laco_table16_rule"),


rule laco_table17_source:
    input:
        PLAN.table_files("laco_table17_source"),


rule laco_table18_size:
    input:
        PLAN.table_files("laco_table18_size"),
