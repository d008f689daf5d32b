"""LaCo Fig. 4 (adjacent weight distances) and Fig. 5 (adjacent-layer and merged-layer cosines) as PNGs."""

from __future__ import annotations

import os
import textwrap
from typing import Any, Sequence

from ..atomic import atomic_file


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png")
    _plt().close(fig)


def fig4_weight_distances(rows: Sequence[dict[str, Any]], path: str | os.PathLike, title: str) -> None:
    """One line per projection: ``‖W^(l+1) − W^(l)‖_F`` against the pair's lower layer l (0-based)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    for proj in dict.fromkeys(r["projection"] for r in rows):
        pts = [(r["layer"], r["frobenius"]) for r in rows if r["projection"] == proj]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", lw=1.2, label=proj)
    ax.set_xlabel("layer l (pair l, l+1; 0-based)")
    ax.set_ylabel("Frobenius distance")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=8)
    ax.legend(fontsize=7)
    _save(fig, path)


def fig5a_adjacent_cosine(cosines: Sequence[float], path: str | os.PathLike, title: str) -> None:
    """Cosine of layer l's input and output (``h[l]``, ``h[l+1]``) per layer l (0-based)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    ax.plot(range(len(cosines)), cosines, marker=".", lw=1.2)
    ax.set_xlabel("layer l (0-based)")
    ax.set_ylabel("cosine(h[l], h[l+1])")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=8)
    _save(fig, path)


def fig5b_merged_cosine(rows: Sequence[dict[str, Any]], path: str | os.PathLike, title: str) -> None:
    """Per group start s: the merged layer's output vs the group's last layer's (and the skip baseline)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    xs = [f"{r['start'] + 1}-{r['last'] + 1}" for r in rows]
    ax.plot(xs, [r["merged_cosine"] for r in rows], marker="o", label="RDSC-merged layer")
    ax.plot(xs, [r["skip_cosine"] for r in rows], marker="x", ls="--", label="group skipped (input)")
    ax.set_xlabel("merged group (1-based layers)")
    ax.set_ylabel("cosine with the group's last layer output")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=8)
    ax.legend(fontsize=7)
    _save(fig, path)
