"""BI/SBI and NPIB heat maps of every model, and results/tables/figures.md (rule similarity_heatmaps)."""
from pathlib import Path

import pandas as pd

from layerpuzzle.atomic import write_text
from layerpuzzle.figures import figures_markdown, npib_figure, score_figure
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.mka.npib import npib_from_frame


def main(job):
    p = job.params
    entries = []
    for model in p.models:
        d = Path(p.scores_dirs[model])
        png = Path(p.figures_dir) / model / "bi_sbi.png"
        score_figure(pd.read_parquet(d / "bi.parquet"), pd.read_parquet(d / "sbi.parquet"), png,
                     f"{model}: BI (diagonal) and SBI (bands) — {d.parent.name}/{d.name}")
        entries.append((model, "BI / SBI window scores", png))
        for kernel, path in dict(p.npib_paths[model]).items():
            png = Path(p.figures_dir) / model / f"npib_{kernel}.png"
            S = npib_from_frame(pd.read_parquet(path))
            npib_figure(S, png, f"{model}: MKA NPIB ({kernel} kernel)")
            entries.append((model, f"MKA NPIB similarity ({kernel} kernel)", png))
    write_text(job.output.index, figures_markdown(entries, job.output.index))
    return {"figures": [str(e[2]) for e in entries]}


run_job(snakemake, main)  # noqa: F821
