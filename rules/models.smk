# Stage 0: every model as one safetensors HF directory (the dense checkpoint).


rule prepare_model:
    output:
        model=directory("results/{model}/dense"),
        prov="results/{model}/dense.prov.json",
    wildcard_constraints:
        model=ORIGINAL_MODEL_RE,
    params:
        spec=lambda wc: config["models"][wc.model],
        download_dir=lambda wc: f"results/_downloads/{wc.model}",
    log:
        "logs/{model}/prepare_model.log",
    benchmark:
        "benchmarks/{model}/prepare_model.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        mem_mb=lambda wc, attempt: RES["mem_mb"] * attempt,
        runtime=lambda wc, attempt: RES["runtime"] * attempt,
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/prepare_model.py"


# A derived model (models.<name>.source: derived): a checkpoint of another model as its dense directory, so every
# method can prune it again (docs/methods/lm_posttrain.md, "Re-pruning"). Rebuilt when that checkpoint is.
rule derive_model:
    input:
        ckpt=lambda wc: PLAN.derived_source_dir(wc.model),
    output:
        model=directory("results/{model}/dense"),
        prov="results/{model}/dense.prov.json",
    wildcard_constraints:
        model=DERIVED_MODEL_RE,
    params:
        chain=lambda wc: PLAN.derived_chain(wc.model),
    log:
        "logs/{model}/derive_model.log",
    threads: 1
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/derive_model.py"
