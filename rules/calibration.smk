# Stage 1: calibration sets (token windows) as artifacts: results/{model}/calib/<id>.safetensors, one rule for
# every method's calibration set (the id names all its settings: layerpuzzle.data.calibration.CalibrationSpec).
from layerpuzzle.data.calibration import CalibrationSpec
from layerpuzzle.data.text_sources import CALIBRATION_MIRROR_KEYS


rule calibration_set:
    input:
        model=get_model_dir,
        data=lambda wc: mirror_inputs(CALIBRATION_MIRROR_KEYS[CalibrationSpec.parse(wc.calib).dataset]),
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
