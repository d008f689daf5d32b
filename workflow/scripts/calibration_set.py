"""Build one calibration set of token windows (rule calibration_set)."""
from transformers import AutoTokenizer

from layerpuzzle.data.calibration import CalibrationSpec, build_calibration, save_calibration
from layerpuzzle.data.text_sources import calibration_rows, mmlu_rows_by_subject, resolve_mirror
from layerpuzzle.jobs import run_job


def main(job):
    spec = CalibrationSpec.parse(job.params.calib)
    mirror = resolve_mirror(job.params.mirror or None)
    if spec.selection == "per_subject":  # the released MMLU loader: n split evenly over the subjects
        rows, source = mmlu_rows_by_subject(mirror)
    else:
        rows, source = calibration_rows(spec.dataset, mirror)
    tokenizer = AutoTokenizer.from_pretrained(job.input.model)
    windows, info = build_calibration(rows, tokenizer, spec)
    save_calibration(job.output.calib, windows, {**info, **{f"source_{k}": v for k, v in source.items()}})
    return {"calibration": info, "source": source}


run_job(snakemake, main)  # noqa: F821
