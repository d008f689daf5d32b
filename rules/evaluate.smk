# Stage 4: evaluation of any checkpoint (dense or pruned) in one job: perplexity
# on each corpus (docs/evaluation.md) and the benchmarks of evaluation.tasks through lm-eval. One job
# per checkpoint keeps the model loaded once (a job's Python start-up alone costs
# ~7 s); changing any evaluation setting re-runs the evaluations and the tables,
# nothing upstream.
# evaluation.tasks_by_target restricts the task list of the checkpoints at some target labels (MKA's
# MMLU-only sweep). The outputs name the tasks, so each restricted list gets its own rule
# (evaluate_checkpoint_<tasks>, PLAN.eval_task_groups) over the checkpoints at its labels, and
# evaluate_checkpoint takes every other checkpoint ({ckpt} constraints: PLAN.eval_ckpt_re).



rule evaluate_checkpoint:
    input:
        ckpt=get_checkpoint_dir,
        data=eval_mirror_inputs_of(EVAL["tasks"]),
    output:
        metrics="results/{model}/eval/{ckpt}/metrics.json",
        ppl=expand("results/{{model}}/eval/{{ckpt}}/ppl-{d}.json", d=EVAL["perplexity"]["datasets"]),
        tasks=expand("results/{{model}}/eval/{{ckpt}}/task-{t}.json", t=list(EVAL["tasks"])),
        raw=expand("results/{{model}}/eval/{{ckpt}}/task-{t}.raw.json", t=list(EVAL["tasks"])),
        prov="results/{model}/eval/{ckpt}/metrics.prov.json",
    wildcard_constraints:
        ckpt=PLAN.eval_ckpt_re(),
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
    threads: EVAL_THREADS
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/evaluate_checkpoint.py"


# The restricted task lists (none in the embedded default): the same job on fewer tasks.
for _group in PLAN.eval_task_groups():

    rule:
        name:
            _group["rule"]
        input:
            ckpt=get_checkpoint_dir,
            data=eval_mirror_inputs_of(_group["tasks"]),
        output:
            metrics="results/{model}/eval/{ckpt}/metrics.json",
            ppl=expand("results/{{model}}/eval/{{ckpt}}/ppl-{d}.json", d=EVAL["perplexity"]["datasets"]),
            tasks=expand("results/{{model}}/eval/{{ckpt}}/task-{t}.json", t=_group["tasks"]),
            raw=expand("results/{{model}}/eval/{{ckpt}}/task-{t}.raw.json", t=_group["tasks"]),
            prov="results/{model}/eval/{ckpt}/metrics.prov.json",
        wildcard_constraints:
            ckpt=PLAN.eval_ckpt_re(_group["labels"]),
        params:
            model=lambda wc: wc.model,
            ckpt=lambda wc: wc.ckpt,
            perplexity=EVAL["perplexity"],
            tasks={t: EVAL["tasks"][t] for t in _group["tasks"]},
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
        threads: EVAL_THREADS
        resources:
            **heavy_resources(),
        conda:
            ENV_MODEL
        script:
            "../workflow/scripts/evaluate_checkpoint.py"
