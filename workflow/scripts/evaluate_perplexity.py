"""Perplexity of one checkpoint on one corpus (rule perplexity)."""
from layerpuzzle.atomic import write_json
from layerpuzzle.data.text_sources import perplexity_text, resolve_mirror
from layerpuzzle.evaluation.perplexity import perplexity, window_tokens
from layerpuzzle.jobs import run_job
from layerpuzzle.models.sources import load_model


def main(job):
    p = job.params
    model, tok = load_model(job.input.ckpt, dtype=p.dtype, device=p.device)
    text, source = perplexity_text(p.dataset, resolve_mirror(p.mirror or None))
    windows = window_tokens(text, tok, p.seq_len, p.max_windows)
    result = perplexity(model, windows, batch_size=p.batch_size)
    write_json(job.output.result, {"dataset": p.dataset, **result.to_dict(), "source": source})
    return {"ppl": result.ppl, "n_windows": result.n_windows}


run_job(snakemake, main)  # noqa: F821
