# Stage 1: calibration sets (token windows) as artifacts.


def calibration_mirror_inputs(wildcards):
    dataset = CalibrationSpec.parse(wildcards.calib).dataset
    key = {"wikitext2": "wikitext2/train", "c4": "c4/validation", "pg19": "pg19/train",
           "mmlu": "mmlu/test", "alpaca": "alpaca/train"}[dataset]
    return mirror_inputs(key)


rule calibration_set:
    input:
        model=get_model_dir,
        data=calibration_mirror_inputs,
    output:
        calib="results/{model}/calib/{calib}.safetensors",
        prov="results/{model}/calib/{calib}.prov.json",
    params:
        calib=lambda wc: wc.calib,
        mirror=MIRROR_PARAM,
    log:
        "logs/{model}/calib/{calib}.log",
    threads: 1
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/calibration_set.py"
