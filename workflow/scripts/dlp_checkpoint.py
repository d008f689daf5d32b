"""A pruned checkpoint: the first n layers of a DLP baseline's removal order removed (rule dlp_checkpoint)."""
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.dlp.order_io import read_order
from layerpuzzle.methods.dlp.pipeline import checkpoint_from_order
from layerpuzzle.models.checkpoint import check_target
from layerpuzzle.models.sources import load_model


def main(job):
    p = job.params
    check_target(job.input.model, p.fraction)  # before loading: a target the model cannot take fails at once
    model, tok = load_model(job.input.model, dtype=p.dtype, device=p.device)
    return checkpoint_from_order(model, tok, read_order(job.input.order), job.output.ckpt,
                                 target_fraction=p.fraction, base_model=p.model, label=p.label,
                                 params=dict(p.variant))


run_job(snakemake, main)  # noqa: F821
