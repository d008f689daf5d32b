"""MKA's Tables 1-4 and Figs. 2, 6 (rules mka_table1, mka_table2, mka_curves, mka_fig6; docs/tables.md)."""
import json
from pathlib import Path

import pandas as pd

from layerpuzzle.figures.mka import curve_figure, subject_figure
from layerpuzzle.jobs import run_job
from layerpuzzle.sparsity import ArchSpec
from layerpuzzle.tables.mka import curve_table, curve_wide, subject_table, table1, table2
from layerpuzzle.tables.paper import PAPER_DIR
from layerpuzzle.tables.render import write_table

PAPER = PAPER_DIR / "mka"
GROUP_NOTE = ("SmolLM2's widths (576) take quantization group 64, the paper's models group 128 "
              "(docs/quantization.md)")


def stem(paths, name):
    return next(p for p in paths if Path(p).name == f"{name}.csv").rsplit(".", 1)[0]


def with_records(points):
    return [{**p, "record": json.load(open(p["metrics"]))} for p in points]


def archs(dense):
    return {m: ArchSpec.from_hf_config(json.load(open(Path(d) / "config.json"))) for m, d in dict(dense).items()}


def main(job):
    p = job.params
    out = list(job.output.table)
    if job.rule == "mka_table1":
        t = table1(with_records(p.points), archs(p.dense), pd.read_csv(PAPER / "mka_table01_quant.csv"))
        write_table(t, stem(out, "mka_table1"),
                    caption=f"MKA Table 1: layer methods alone and quantized, MMLU (%), beside the paper's model "
                            f"named in the row; CR = (L - L_kept/Q)/L with Q = 16/weight bits. {GROUP_NOTE}.")
        return {"rows": len(t)}
    if job.rule == "mka_table2":
        t = table2(with_records(p.points), archs(p.dense),
                   pd.read_csv(PAPER / "mka_table02_llama3_8b_benchmarks.csv"))
        write_table(t, stem(out, "mka_table2"),
                    caption="MKA Table 2: SparseGPT, ShortGPT and MKA per compression level, beside Llama3-8B in "
                            "the paper (level i = the paper's i-th CR); SparseGPT's CR = its sparsity of the decoder "
                            "Linear weights (our reading). Paper cells are garbled in places (note).")
        return {"rows": len(t)}
    if job.rule == "mka_curves":
        long = curve_table(with_records(p.points), archs(p.dense),
                           pd.read_csv(PAPER / "mka_tables03_04_mmlu_curves.csv"))
        write_table(curve_wide(long), stem(out, "mka_table3_4"),
                    caption="MKA Tables 3-4: MMLU (%) after removing k layers, ours and the paper's (model in the long "
                            "table mka_curves) at the same k (CR = k/L differs: L = 32 or 40 there)")
        write_table(long, stem(out, "mka_curves"), caption="MKA Fig. 2 data (long format)")
        curve_figure(long, job.output.figure[0], "MKA Fig. 2: MMLU vs compression ratio")
        return {"rows": len(long)}
    if job.rule == "mka_fig6":
        points = [{**pt, "raw": json.load(open(raw))} for pt, raw in zip(p.points, job.input.raw)]
        t = subject_table(points, list(p.subjects))
        write_table(t, stem(out, "mka_fig6_subjects"),
                    caption="MKA Fig. 6: per-subject MMLU accuracy along the sweep (the mirror has 20 questions per "
                            "subject: steps of 5 points)")
        subject_figure(t, job.output.figure[0], "MKA Fig. 6: MMLU subjects vs layers removed")
        return {"rows": len(t)}
    raise ValueError(f"unknown rule {job.rule!r}")


run_job(snakemake, main)  # noqa: F821
