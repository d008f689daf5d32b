# Stage 4: evaluation of any checkpoint (dense or pruned): perplexity on each
# corpus and each benchmark through lm-eval, one job per (checkpoint, item),
# so that changing one task's setting re-runs only that task.

EVAL = config["evaluation"]

TASK_MIRROR_KEYS = {}  # local tasks read the mirror through their rendered YAMLs


def ppl_mirror_inputs(wildcards):
    keys = {"wikitext2": ["wikitext2/test", "wikitext2/test_skeleton"], "c4": ["c4/validation"]}
    return mirror_inputs(*keys[wildcards.dataset])


rule perplexity:
    input:
        ckpt=get_checkpoint_dir,
        data=ppl_mirror_inputs,
    output:
        result="results/{model}/eval/{ckpt}/ppl-{dataset}.json",
        prov="results/{model}/eval/{ckpt}/ppl-{dataset}.prov.json",
    params:
        dataset=lambda wc: wc.dataset,
        seq_len=EVAL["perplexity"]["seq_len"],
        max_windows=EVAL["perplexity"]["max_windows"],
        batch_size=EVAL["batch_size"],
        mirror=MIRROR_PARAM,
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
    log:
        "logs/{model}/eval/{ckpt}/ppl-{dataset}.log",
    benchmark:
        "benchmarks/{model}/eval/{ckpt}/ppl-{dataset}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    script:
        "../workflow/scripts/evaluate_perplexity.py"


rule benchmark_task:
    input:
        ckpt=get_checkpoint_dir,
    output:
        result="results/{model}/eval/{ckpt}/task-{task}.json",
        raw="results/{model}/eval/{ckpt}/task-{task}.raw.json",
        prov="results/{model}/eval/{ckpt}/task-{task}.prov.json",
    params:
        task=lambda wc: wc.task,
        limit=lambda wc: EVAL["tasks"][wc.task]["limit"],
        batch_size=EVAL["batch_size"],
        max_length=EVAL["max_length"],
        mirror=MIRROR_PARAM,
        seed=config["seed"],
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
    log:
        "logs/{model}/eval/{ckpt}/task-{task}.log",
    benchmark:
        "benchmarks/{model}/eval/{ckpt}/task-{task}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    script:
        "../workflow/scripts/evaluate_task.py"


rule collect_metrics:
    input:
        ckpt=get_checkpoint_dir,
        ppl=lambda wc: expand("results/{{model}}/eval/{{ckpt}}/ppl-{d}.json", d=EVAL["perplexity"]["datasets"]),
        tasks=lambda wc: expand("results/{{model}}/eval/{{ckpt}}/task-{t}.json", t=list(EVAL["tasks"])),
    output:
        metrics="results/{model}/eval/{ckpt}/metrics.json",
    params:
        model=lambda wc: wc.model,
        ckpt=lambda wc: wc.ckpt,
    log:
        "logs/{model}/eval/{ckpt}/metrics.log",
    script:
        "../workflow/scripts/collect_metrics.py"
