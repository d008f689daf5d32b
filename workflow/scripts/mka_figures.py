"""MKA Figs. 3 (similarity before / after merging) and 5 (other similarity measures) (rules mka_fig3, mka_fig5)."""
import pandas as pd

from layerpuzzle.figures.mka import matrices_figure
from layerpuzzle.jobs import run_job
from layerpuzzle.methods.mka.analyses import matrix_from_frame
from layerpuzzle.methods.mka.npib import npib_from_frame


def main(job):
    p = job.params
    panels = {}
    for key, paths in dict(p.matrices).items():
        model, ckpt = key.split("|", 1)
        method, target = (ckpt.split("/") + [""])[:2]
        who = "before merging" if ckpt == "dense" else f"after merging ({method} {target})"
        if job.rule == "mka_fig5":
            who = model
        frame = pd.read_parquet(paths["measures"])
        panels[f"NPIB ({p.kernel} kernel), {who}"] = npib_from_frame(pd.read_parquet(paths["npib"]))
        for measure in dict.fromkeys(frame["measure"]):
            if job.rule == "mka_fig3" and measure != "cosine":
                continue
            panels[f"{measure}, {who}"] = matrix_from_frame(frame, measure)
    title = ("MKA Fig. 3: layer similarity before and after merging" if job.rule == "mka_fig3"
             else "MKA Fig. 5: layer similarity under other measures (Euclidean is a distance)")
    matrices_figure(panels, job.output.figure[0], title)
    return {"panels": list(panels)}


run_job(snakemake, main)  # noqa: F821
