"""Loss curve of a post-training run (paper Fig. 12: loss vs step; CoMe-mp's sub-runs concatenated).

``curve`` is the run's ``[(phase, loss)]`` per optimiser step in training order
(:meth:`layerpuzzle.distill.hierarchical.DistillResult.loss_curve`); each phase
gets its own colour and a dotted line marks where the next phase starts.
"""

from __future__ import annotations

import os
import textwrap
from itertools import groupby
from typing import Sequence

from ..atomic import atomic_file


def plot_loss_curve(curve: Sequence[tuple[str, float]], path: str | os.PathLike, title: str,
                    ylabel: str = "training loss") -> None:
    """Write the curve as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    runs = [(name, [loss for _, loss in group]) for name, group in groupby(curve, key=lambda item: item[0])]
    start = 0
    for k, (name, ys) in enumerate(runs):
        ax.plot(range(start + 1, start + len(ys) + 1), ys, lw=1.2, label=name)
        if k:
            ax.axvline(start + 0.5, color="grey", ls=":", lw=0.8)
        start += len(ys)
    ax.set_xlabel("optimiser step (phases concatenated in training order)" if len(runs) > 1 else "optimiser step")
    ax.set_ylabel(ylabel)
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=8)
    if 1 < len(runs) <= 12:
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_loss_history(ckpt_dir: str | os.PathLike, path: str | os.PathLike, title: str) -> dict[str, float | int]:
    """Plot a trained checkpoint's ``loss_history.csv`` (phase, phase_step, global_step, loss) to ``path``;
    returns the number of steps and the first and last loss."""
    import csv
    from pathlib import Path

    with open(Path(ckpt_dir) / "loss_history.csv") as f:
        rows = list(csv.DictReader(f))
    curve = [(r["phase"], float(r["loss"])) for r in rows]
    plot_loss_curve(curve, path, title, ylabel="next-token cross-entropy")
    return {"steps": len(curve), "first_loss": curve[0][1], "last_loss": curve[-1][1]}
