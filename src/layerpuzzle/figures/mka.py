"""MKA's figures: Fig. 2 (MMLU vs layers removed, ours beside the paper's), Figs. 3 and 5 (layer × layer
similarity before/after merging and under other measures), Fig. 6 (per-subject MMLU along the sweep)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..atomic import atomic_file  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _panel(ax, M: np.ndarray, title: str, xlabel: str, ylabel: str, cmap: str) -> None:
    im = ax.imshow(np.ma.masked_invalid(M), cmap=cmap, origin="upper", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def curve_figure(curves: pd.DataFrame, path: str | Path, title: str) -> None:
    """Fig. 2: per model a panel of MMLU (%) vs CR (%) for each method (ours), and a panel with the paper's
    values of the paper model (``curves``: :func:`layerpuzzle.tables.mka.curve_table`)."""
    models = list(dict.fromkeys(curves["Model"]))
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(5.2 * (len(models) + 1), 4), squeeze=False)
    fig.subplots_adjust(wspace=0.3)
    methods = [m for m in dict.fromkeys(curves["Method"]) if m != "Vanilla"]
    for ax, model in zip(axes[0], models):
        d = curves[curves["Model"] == model]
        v = d[d["Method"] == "Vanilla"]
        for m in methods:
            g = pd.concat([v, d[d["Method"] == m]]).sort_values("Layers removed")
            ax.plot(g["CR (%)"], g["MMLU"], marker="o", ms=3, label=m)
        ax.set_title(f"ours: {model}", fontsize=9)
        ax.set_xlabel("compression ratio (%) = layers removed / L")
        ax.set_ylabel("MMLU accuracy (%)")
        ax.legend(fontsize=8)
    ax = axes[0][-1]
    paper = curves.dropna(subset=["Paper MMLU"])
    for m in methods:
        g = paper[paper["Method"].isin([m, "Vanilla"])].drop_duplicates("Layers removed").sort_values("Layers removed")
        if len(g):
            ax.plot(g["Paper CR (%)"], g["Paper MMLU"], marker="o", ms=3, ls="--", label=m)
    pm = paper["Paper model"].iloc[0] if len(paper) else "paper"
    ax.set_title(f"paper: {pm} (same layer counts)", fontsize=9)
    ax.set_xlabel("compression ratio (%)")
    ax.set_ylabel("MMLU accuracy (%)")
    if len(paper):
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def matrices_figure(panels: Mapping[str, np.ndarray], path: str | Path, title: str) -> None:
    """Figs. 3 and 5: one heat map per panel title, side by side (layer i vs layer j)."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 4.4), squeeze=False)
    fig.subplots_adjust(wspace=0.45)
    for ax, (name, M) in zip(axes[0], panels.items()):
        _panel(ax, M, name, "layer j", "layer i", "magma" if "NPIB" in name else "viridis")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def subject_figure(subjects: pd.DataFrame, path: str | Path, title: str) -> None:
    """Fig. 6: per subject a panel of accuracy (%) vs layers removed, one line per method, and MMLU's chance
    level (25 %) dotted (``subjects``: :func:`layerpuzzle.tables.mka.subject_table`)."""
    names = list(dict.fromkeys(subjects["Subject"]))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, s in zip(axes[0], names):
        d = subjects[subjects["Subject"] == s]
        v = d[d["Method"] == "Vanilla"]
        for m in [m for m in dict.fromkeys(d["Method"]) if m != "Vanilla"]:
            g = pd.concat([v, d[d["Method"] == m]]).sort_values("Layers removed")
            ax.plot(g["Layers removed"], g["Accuracy (%)"], marker="o", ms=3, label=m)
        ax.axhline(25.0, color="grey", ls=":", lw=1, label="chance (4 choices)")
        n = int(d["Documents"].max()) if len(d) else 0
        ax.set_title(f"{s.replace('_', ' ')} ({n} questions)", fontsize=9)
        ax.set_xlabel("layers removed")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
