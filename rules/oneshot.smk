# Post-processing stage: quantization / sparsification of ANY checkpoint with llm-compressor's oneshot
# (GPTQ, AWQ, SmoothQuant, SparseGPT; docs/quantization.md). Checkpoint id `{source}/oneshot/{scheme}`:
#   results/{model}/pruned/oneshot/{scheme}/{source}      (rule oneshot_compress; PLAN.checkpoint_dir)
# with {source} = dense or a method's checkpoint id and {scheme} a slug of
# layerpuzzle.methods.quantize.parse_scheme (gptq-w4a16-g64, sparsegpt-50, ...). The evaluation is the
# ordinary evaluate_checkpoint at results/{model}/eval/{source}/oneshot/{scheme}/. (The directory is not
# pruned/{source}/oneshot/{scheme}: Snakemake refuses an output inside another job's directory output.) Bad schemes, group sizes
# and sources are refused while the DAG is built (PLAN.check_oneshot_*); the job re-checks the group size
# against the source's config.json before it loads weights. Logic: layerpuzzle.methods.quantize.pipeline.


rule oneshot_compress:
    input:
        ckpt=lambda wc: PLAN.checkpoint_dir(wc.model, wc.source),
        calib=lambda wc: PLAN.oneshot_calib_path(wc.model),
    output:
        ckpt=directory("results/{model}/pruned/oneshot/{scheme}/{source}"),
    wildcard_constraints:
        source=BASE_CKPT_RE,
        scheme=SCHEME_RE,
    params:
        model=lambda wc: wc.model,
        source=lambda wc: wc.source,
        scheme=oneshot_checked,
        calibration=config["oneshot"]["calibration"],
        batch_size=config["oneshot"]["batch_size"],
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/pruned/oneshot/{scheme}/{source}.log",
    benchmark:
        "benchmarks/{model}/pruned/oneshot/{scheme}/{source}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/oneshot_compress.py"
