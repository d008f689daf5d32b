"""Peak memory and generation tokens/s of one checkpoint (rule efficiency; LaCo Tables 5 and 20)."""
from layerpuzzle.atomic import write_json
from layerpuzzle.data.text_sources import calibration_rows, resolve_mirror
from layerpuzzle.evaluation.efficiency import measure_checkpoint
from layerpuzzle.jobs import run_job


def main(job):
    p = job.params
    s = dict(p.settings)
    rows, source = calibration_rows("wikitext2", resolve_mirror(p.mirror or None))
    record = measure_checkpoint(job.input.ckpt, rows, n_prompts=s["n_prompts"], prompt_tokens=s["prompt_tokens"],
                                new_tokens=s["new_tokens"], warmup=s["warmup"], dtype=s["dtype"], device=p.device,
                                label=p.ckpt)
    record.update(model=p.model, checkpoint=p.ckpt, prompt_source=source)
    write_json(job.output.record, record)
    return {k: record[k] for k in ("device", "memory_kind", "memory_mib", "tokens_per_s")}


run_job(snakemake, main)  # noqa: F821
