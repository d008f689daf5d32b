# Direct layer pruning baselines (docs/methods/mag_plus.md, docs/methods/taylor_plus.md, docs/methods/shortgpt.md, docs/methods/sleb.md, docs/tables.md; CoMe Tables 4, 5, 8-10):
#   mag_plus = Mag+, taylor_plus = Taylor+, shortgpt = ShortGPT, sleb = SLEB, reverse = Reverse.
#
# 1. dlp_order_<key>: the method's removal order, computed ONCE per model, calibration set
#    (or "data-free") and variant:
#      results/{model}/orders/<key>/<calib id | data-free>/{variant}/order.parquet
#    SLEB also logs the NLL of every candidate of every step (candidates.parquet). SLEB's
#    greedy order is computed up to the largest target it must serve (the variant's targets
#    and run.table3_targets); a smaller target's order is its prefix.
# 2. dlp_checkpoint: per target, the first n layers of the order removed (n by the Table 3
#    rule), saved with save_pruned under results/{model}/pruned/<key>/{target}/{variant}.
#    Every enabled variant x target is in all_tables' results table (PLAN.checkpoints_of).
# 3. table04_layer_order: the orders at run.table3_targets in the paper's Table 4 layout,
#    the paper's orders beside ours for models with a paper_name.

DLP_KEYS = PLAN.dlp_keys()


# ------------------------------------------------------------------ orders
rule dlp_order_mag_plus:
    input:
        model=get_model_dir,
    output:
        order="results/{model}/orders/mag_plus/data-free/{variant}/order.parquet",
        prov="results/{model}/orders/mag_plus/data-free/{variant}/order.prov.json",
    params:
        **dlp_common_params("mag_plus"),
    log:
        "logs/{model}/orders/mag_plus/data-free/{variant}.log",
    benchmark:
        "benchmarks/{model}/orders/mag_plus/data-free/{variant}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_order.py"


rule dlp_order_reverse:
    input:
        model=get_model_dir,
    output:
        order="results/{model}/orders/reverse/data-free/{variant}/order.parquet",
        prov="results/{model}/orders/reverse/data-free/{variant}/order.prov.json",
    params:
        **dlp_common_params("reverse"),
    log:
        "logs/{model}/orders/reverse/data-free/{variant}.log",
    threads: 1
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/dlp_order.py"


rule dlp_order_taylor_plus:
    input:
        model=get_model_dir,
        calib=get_calibration,
    output:
        order="results/{model}/orders/taylor_plus/{calib}/{variant}/order.parquet",
        prov="results/{model}/orders/taylor_plus/{calib}/{variant}/order.prov.json",
    params:
        **dlp_common_params("taylor_plus"),
    log:
        "logs/{model}/orders/taylor_plus/{calib}/{variant}.log",
    benchmark:
        "benchmarks/{model}/orders/taylor_plus/{calib}/{variant}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_order.py"


rule dlp_order_shortgpt:
    input:
        model=get_model_dir,
        calib=get_calibration,
    output:
        order="results/{model}/orders/shortgpt/{calib}/{variant}/order.parquet",
        prov="results/{model}/orders/shortgpt/{calib}/{variant}/order.prov.json",
    params:
        **dlp_common_params("shortgpt"),
        # CoMe App. B.1: the ShortGPT paper's order heads LLaMA-2-7B/13B's (config/paper.yaml)
        published=lambda wc: (config["methods"]["shortgpt"].get("published_orders") or {}).get(wc.model),
    log:
        "logs/{model}/orders/shortgpt/{calib}/{variant}.log",
    benchmark:
        "benchmarks/{model}/orders/shortgpt/{calib}/{variant}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_order.py"


rule dlp_order_sleb:
    input:
        model=get_model_dir,
        calib=get_calibration,
    output:
        order="results/{model}/orders/sleb/{calib}/{variant}/order.parquet",
        candidates="results/{model}/orders/sleb/{calib}/{variant}/candidates.parquet",
        prov="results/{model}/orders/sleb/{calib}/{variant}/order.prov.json",
    params:
        **dlp_common_params("sleb"),
        fractions=lambda wc: PLAN.dlp_fractions("sleb", wc.variant, wc.model),
    log:
        "logs/{model}/orders/sleb/{calib}/{variant}.log",
    benchmark:
        "benchmarks/{model}/orders/sleb/{calib}/{variant}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_order.py"


# ------------------------------------------------------------------ checkpoints
rule dlp_checkpoint:
    input:
        model=get_model_dir,
        order=lambda wc: PLAN.dlp_order_path(wc.model, wc.dlp, wc.variant),
    output:
        ckpt=directory("results/{model}/pruned/{dlp}/{target}/{variant}"),
    wildcard_constraints:
        dlp="|".join(DLP_KEYS),
        target=TARGET_RE,
    params:
        model=lambda wc: wc.model,
        method=lambda wc: wc.dlp,
        variant=lambda wc: PLAN.variant(wc.dlp, wc.variant, wc.model).settings,
        label=lambda wc: PLAN.variant_label(wc.dlp, wc.variant, wc.model),
        fraction=lambda wc: target_param(wc.target),
        dtype=model_dtype,
        device=model_device(),
    log:
        "logs/{model}/pruned/{dlp}/{target}/{variant}.log",
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_checkpoint.py"


# ------------------------------------------------------------------ Table 4
# Rows: every enabled removal order and FuseGPT-MI's (PLAN.table4_entries).
rule table04_layer_order:
    input:
        orders=lambda wc: [e["order"] for e in PLAN.table4_entries()],
        models=[get_model_dir(m) for m in PLAN.run_models],
    output:
        table=reported(PLAN.table_files("table04_layer_order"), "table04_layer_order.rst", "Table 4: layer order",
                       "Table 4"),
        vs_paper=reported(PLAN.table_files("table04_vs_paper"), "table04_layer_order.rst", "Table 4: layer order",
                          "Table 4 vs paper"),
        prov=f"{TABLES}/table04_layer_order.prov.json",
    params:
        entries=lambda wc: PLAN.table4_entries(),
        model_dirs={m: get_model_dir(m) for m in PLAN.run_models},
        paper_names={m: config["models"][m].get("paper_name") for m in PLAN.run_models},
        levels=config["run"]["table3_targets"],
    log:
        "logs/tables/table04_layer_order.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/dlp_table4.py"

