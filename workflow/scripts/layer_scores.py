"""BI, SBI, activation statistics and channel sensitivity in one pass (rule layer_scores)."""
from layerpuzzle.data.calibration import load_calibration
from layerpuzzle.engine.scores_io import compute_and_save_scores
from layerpuzzle.jobs import run_job
from layerpuzzle.models.sources import load_model


def main(job):
    last_layer_output, span = job.params.scoring.rsplit("-span", 1)
    model, _ = load_model(job.input.model, dtype=job.params.dtype, device=job.params.device)
    return compute_and_save_scores(
        model,
        load_calibration(job.input.calib),
        model_name=job.params.model,
        calib_id=job.params.calib,
        max_span=int(span),
        last_layer_output=last_layer_output,
        batch_size=job.params.batch_size,
        outputs=dict(job.output),
        keep_hidden_dir=(job.output.bi.rsplit("/", 1)[0] + "/hidden_states") if job.params.keep_hidden_states else None,
    )


run_job(snakemake, main)  # noqa: F821
