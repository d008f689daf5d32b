# Stage 4: evaluation of any checkpoint (dense or pruned) in one job: perplexity
# on each corpus (docs/evaluation.md) and the seven benchmarks through lm-eval. One job
# per checkpoint keeps the model loaded once (a job's Python start-up alone costs
# ~7 s); changing any evaluation setting re-runs the evaluations and the tables,
# nothing upstream.



rule evaluate_checkpoint:
    input:
        ckpt=get_checkpoint_dir,
        data=eval_mirror_inputs,
    output:
        metrics="results/{model}/eval/{ckpt}/metrics.json",
        ppl=expand("results/{{model}}/eval/{{ckpt}}/ppl-{d}.json", d=EVAL["perplexity"]["datasets"]),
        tasks=expand("results/{{model}}/eval/{{ckpt}}/task-{t}.json", t=list(EVAL["tasks"])),
        raw=expand("results/{{model}}/eval/{{ckpt}}/task-{t}.raw.json", t=list(EVAL["tasks"])),
        prov="results/{model}/eval/{ckpt}/metrics.prov.json",
    params:
        model=lambda wc: wc.model,
        ckpt=lambda wc: wc.ckpt,
        perplexity=EVAL["perplexity"],
        tasks=EVAL["tasks"],
        batch_size=EVAL["batch_size"],
        max_length=EVAL["max_length"],
        mirror=MIRROR_PARAM,
        seed=config["seed"],
        dtype=model_dtype,
        device=model_device(),
    log:
        "logs/{model}/eval/{ckpt}/evaluate.log",
    benchmark:
        "benchmarks/{model}/eval/{ckpt}/evaluate.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/evaluate_checkpoint.py"
