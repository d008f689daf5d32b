"""The removal order of one DLP baseline (rules dlp_order_<key>)."""
from layerpuzzle.data.calibration import load_calibration
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.dlp.pipeline import calibration_metadata, compute_order, save_order
from layerpuzzle.models.checkpoint import check_target
from layerpuzzle.models.sources import load_model


def main(job):
    p = job.params
    for target in p.get("fractions", []):  # SLEB's greedy order serves every target: check them before loading
        check_target(job.input.model, target)
    model, _ = load_model(job.input.model, dtype=p.dtype, device=p.device)
    has_calib = "calib" in job.input.keys()
    result = compute_order(
        p.method, model,
        variant=dict(p.variant), settings=dict(p.settings),
        calib=load_calibration(job.input.calib) if has_calib else None,
        calib_meta=calibration_metadata(job.input.calib) if has_calib else None,
        fractions=list(p.get("fractions", [])),
        published=p.get("published"),
    )
    save_order(result, job.output.order, job.output.get("candidates"))
    return result.facts


run_job(snakemake, main)  # noqa: F821
