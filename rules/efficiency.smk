# Efficiency (docs/efficiency.md; LaCo Tables 5 and 20): peak memory and generation tokens/s of any
# checkpoint id ({ckpt}: dense, <method>/<target>/<variant>, uneven-width checkpoints too; the checkpoint
# directory is PLAN.checkpoint_dir and the model is loaded with the project's loader). Fixed prompts
# (WikiText-2 train rows), warm-up passes excluded; on CPU the record says so (memory = parameters + peak
# RSS rise) and the tables show ratios to the dense model measured the same way.
# Logic: layerpuzzle.evaluation.efficiency.


rule efficiency:
    input:
        ckpt=get_checkpoint_dir,
        data=mirror_inputs("wikitext2/train"),
    output:
        record="results/{model}/efficiency/{ckpt}/efficiency.json",
        prov="results/{model}/efficiency/{ckpt}/efficiency.prov.json",
    params:
        model=lambda wc: wc.model,
        ckpt=lambda wc: wc.ckpt,
        settings=config["efficiency"],
        mirror=MIRROR_PARAM,
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/efficiency/{ckpt}.log",
    benchmark:
        "benchmarks/{model}/efficiency/{ckpt}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/efficiency.py"
