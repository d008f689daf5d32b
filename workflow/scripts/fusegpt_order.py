"""FuseGPT-MI's removal order as an order.parquet, for Table 4 (rule fusegpt_mi_order)."""
import json
from pathlib import Path

from layerpuzzle.jobs import run_job
from layerpuzzle.methods.dlp.order_io import write_order
from layerpuzzle.methods.fusegpt.removal_order import mi_removal_order


def main(job):
    record = json.loads((Path(job.input.ckpt) / "fusegpt.json").read_text())
    order = mi_removal_order(record, info={"checkpoint": job.input.ckpt})
    write_order(order, job.output.order)
    return {"layers": order.layers}


run_job(snakemake, main)  # noqa: F821
