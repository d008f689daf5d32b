# Weight-merging baselines (docs/methods/laco.md, docs/methods/mka.md, docs/methods/fusegpt_mi.md): LaCo, MKA, FuseGPT-MI and FuseGPT-MI+F,
# each as described in its paper and as its released code behaves, plus the
# similarity heat maps (BI/SBI from the scores stage, NPIB from MKA).
# Logic: layerpuzzle.methods.{laco,mka,fusegpt}, layerpuzzle.figures.

# ------------------------------------------------------------------ LaCo (docs/methods/laco.md)
rule laco:
    input:
        model=get_model_dir,
    output:
        ckpt=directory(pruned_dir("laco")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        model=lambda wc: wc.model,
        target=lambda wc: target_param(wc.target),
        variant=variant_params("laco"),
        search=lambda wc: PLAN.laco_search(wc.model, wc.target),
        sentences=lambda wc: PLAN.laco_sentences(wc.model, wc.variant),
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        method_log("laco"),
    benchmark:
        method_benchmark("laco")
    threads: 1  # 5 short sentences: one thread is faster than two (small matrices)
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/laco.py"


# ------------------------------------------------------------------ MKA (docs/methods/mka.md)
# One job per model computes the NPIB matrix of every configured kernel from one forward pass.
rule mka_similarity:
    input:
        model=get_model_dir,
        data=mirror_inputs("mmlu/test"),
    output:
        npib=[f"results/{{model}}/mka/npib-{k}.parquet" for k in PLAN.mka_kernels()],
        embeddings=[f"results/{{model}}/mka/embeddings-{k}.parquet" for k in PLAN.mka_kernels()],
        prov="results/{model}/mka/npib.prov.json",
    params:
        model=lambda wc: wc.model,
        kernels=PLAN.mka_kernels(),
        data=merge_cfg("mka")["data"],
        manifold=merge_cfg("mka")["manifold"],
        npib=merge_cfg("mka")["npib"],
        mirror=MIRROR_PARAM,
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/mka/npib.log",
    benchmark:
        "benchmarks/{model}/mka/npib.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/mka_similarity.py"


rule mka:
    input:
        model=get_model_dir,
        npib=lambda wc: PLAN.mka_similarity_path(wc.model, PLAN.variant_params("mka", wc.variant, wc.model)["kernel"]),
    output:
        ckpt=directory(pruned_dir("mka")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        model=lambda wc: wc.model,
        target=lambda wc: target_param(wc.target),
        variant=variant_params("mka"),
        beta=merge_cfg("mka")["beta"],
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        method_log("mka"),
    benchmark:
        method_benchmark("mka")
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/mka.py"


# ------------------------------------------------------------------ FuseGPT (docs/methods/fusegpt_mi.md)
rule fusegpt_mi:
    input:
        model=get_model_dir,
        calib=lambda wc: PLAN.calib_path(wc.model, PLAN.method_calibration("fusegpt_mi")),
    output:
        ckpt=directory(pruned_dir("fusegpt_mi")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        **fusegpt_params("fusegpt_mi", False),
    log:
        method_log("fusegpt_mi"),
    benchmark:
        method_benchmark("fusegpt_mi")
    threads: merge_cfg("fusegpt_mi")["threads"] or RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/fusegpt.py"


# ------------------------------------------------------------------ FuseGPT-MI order (Table 4: PLAN.table4_entries)
rule fusegpt_mi_order:
    input:
        ckpt="results/{model}/pruned/fusegpt_mi/{target}/{variant}",
    output:
        order="results/{model}/orders/fusegpt_mi/{target}/{variant}/order.parquet",
        prov="results/{model}/orders/fusegpt_mi/{target}/{variant}/order.prov.json",
    log:
        "logs/{model}/orders/fusegpt_mi/{target}/{variant}.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/fusegpt_order.py"


rule fusegpt_mif:
    input:
        model=get_model_dir,
        calib=lambda wc: PLAN.calib_path(wc.model, PLAN.method_calibration("fusegpt_mif")),
    output:
        ckpt=directory(pruned_dir("fusegpt_mif")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        **fusegpt_params("fusegpt_mif", True),
    log:
        method_log("fusegpt_mif"),
    benchmark:
        method_benchmark("fusegpt_mif")
    threads: merge_cfg("fusegpt_mif")["threads"] or RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/fusegpt.py"


# ------------------------------------------------------------------ heat maps
rule similarity_heatmaps:
    input:
        scores=[f"{PLAN.scores_dir(m)}/{f}" for m in PLAN.run_models for f in ("bi.parquet", "sbi.parquet")],
        npib=[PLAN.mka_similarity_path(m, k) for m in PLAN.run_models for k in PLAN.mka_kernels()],
    output:
        pngs=[report(p, caption="../report/captions/similarity_heatmaps.rst", category="Figures: layer similarity",
                     subcategory="all models", labels={"figure": Path(p).stem}) for p in PLAN.figure_pngs()],
        index="results/tables/figures.md",
        prov="results/figures/figures.prov.json",
    params:
        models=PLAN.run_models,
        scores_dirs={m: PLAN.scores_dir(m) for m in PLAN.run_models},
        npib_paths={m: {k: PLAN.mka_similarity_path(m, k) for k in PLAN.mka_kernels()} for m in PLAN.run_models},
        figures_dir=FIGURES,
    log:
        "logs/figures/similarity_heatmaps.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/similarity_heatmap.py"

