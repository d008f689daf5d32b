# Width pruning (docs/methods/llm_pruner.md, docs/methods/slicegpt.md): LLM-Pruner and SliceGPT, LaCo's
# baselines. Both keep every layer but change widths inside them, so their checkpoints hold the unpruned
# config.json plus uneven_layers.json (layerpuzzle.models.uneven; load_model reads them, plain
# from_pretrained cannot). {target} = parameter sparsity, solved to LLM-Pruner's ratio / SliceGPT's width.
# Logic: layerpuzzle.methods.{llm_pruner,slicegpt}.pipeline. Both off by default (methods.<key>.enabled).


rule llm_pruner:
    input:
        model=get_model_dir,
        calib=lambda wc: PLAN.calib_path(wc.model, PLAN.method_calibration("llm_pruner")),
    output:
        ckpt=directory(pruned_dir("llm_pruner")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        model=lambda wc: wc.model,
        target=lambda wc: width_target(wc.target),
        variant=variant_params("llm_pruner"),
        calibration=config["methods"]["llm_pruner"]["calibration"],
        batch_size=config["methods"]["llm_pruner"]["batch_size"],
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        method_log("llm_pruner"),
    benchmark:
        method_benchmark("llm_pruner")
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/llm_pruner.py"


rule slicegpt:
    input:
        model=get_model_dir,
        calib=lambda wc: PLAN.calib_path(wc.model, PLAN.method_calibration("slicegpt")),
    output:
        ckpt=directory(pruned_dir("slicegpt")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        model=lambda wc: wc.model,
        target=lambda wc: width_target(wc.target),
        variant=variant_params("slicegpt"),
        calibration=config["methods"]["slicegpt"]["calibration"],
        batch_size=config["methods"]["slicegpt"]["batch_size"],
        rotation_seed=config["methods"]["slicegpt"]["seed"],
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        method_log("slicegpt"),
    benchmark:
        method_benchmark("slicegpt")
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/slicegpt.py"
