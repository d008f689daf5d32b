# Stage 2: one streaming calibration pass per model and calibration set:
# BI per layer, SBI per window (both estimators), activation statistics and
# channel sensitivity per layer.


rule layer_scores:
    input:
        model=get_model_dir,
        calib=get_calibration,
    output:
        bi="results/{model}/scores/{calib}/{scoring}/bi.parquet",
        sbi="results/{model}/scores/{calib}/{scoring}/sbi.parquet",
        activations="results/{model}/scores/{calib}/{scoring}/activation_stats.safetensors",
        sensitivity="results/{model}/scores/{calib}/{scoring}/channel_sensitivity.safetensors",
        prov="results/{model}/scores/{calib}/{scoring}/scores.prov.json",
    params:
        model=lambda wc: wc.model,
        calib=lambda wc: wc.calib,
        scoring=lambda wc: wc.scoring,
        batch_size=config["scores"]["batch_size"],
        keep_hidden_states=config["scores"]["keep_hidden_states"],
        dtype=model_dtype,
        device=model_device(),
    log:
        "logs/{model}/scores/{calib}/{scoring}.log",
    benchmark:
        "benchmarks/{model}/scores/{calib}/{scoring}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/layer_scores.py"
