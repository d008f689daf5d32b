# Stage 0: every model as one safetensors HF directory (the dense checkpoint).


rule prepare_model:
    output:
        model=directory("results/{model}/dense"),
        prov="results/{model}/dense.prov.json",
    params:
        spec=lambda wc: config["models"][wc.model],
        download_dir=lambda wc: f"results/_downloads/{wc.model}",
    log:
        "logs/{model}/prepare_model.log",
    benchmark:
        "benchmarks/{model}/prepare_model.tsv"
    threads: RES["threads"]
    resources:
        mem_mb=lambda wc, attempt: RES["mem_mb"] * attempt,
        runtime=lambda wc, attempt: RES["runtime"] * attempt,
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/prepare_model.py"
