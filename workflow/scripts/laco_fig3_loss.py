"""LaCo Fig. 3: the post-training loss curve of the Tables 6/24 post-trained LaCo checkpoint (rule
laco_fig3_loss_figure)."""
from layerpuzzle.figures.loss_curve import plot_loss_history
from layerpuzzle.jobs import run_job


def main(job):
    return plot_loss_history(job.input.ckpt[0], job.output.png,
                             "LaCo Fig. 3: LM post-training loss of the LaCo checkpoint (paper, Llama2-7B: sharp drop "
                             "by ~250 steps, converging near 1.6 over ~7.6k steps)")


run_job(snakemake, main)  # noqa: F821
