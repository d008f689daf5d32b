"""Layer-similarity heat maps.

* BI/SBI (docs/layer_scores.md): from the scores stage's ``bi.parquet`` (span 0) and
  ``sbi.parquet`` (span m ≥ 1); cell (l, l+m) is the score of the window of
  layers l..l+m, so BI is the diagonal and SBI the bands above it (cells beyond
  ``max_span`` are blank).  One panel per estimator (paper all-token cosine,
  released code).
* NPIB (docs/methods/mka.md): MKA's symmetric layer × layer similarity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..atomic import atomic_file  # noqa: E402

ESTIMATOR_TITLES = {"cosine_mean": "paper estimator (1 − mean token cosine)", "released": "released-code estimator"}


def window_matrix(scores: pd.DataFrame, estimator: str, n_layers: int | None = None) -> np.ndarray:
    """(L, L) matrix M[l, l+m] = score of the window l..l+m (``layer``, ``span``, ``estimator``, ``value`` rows)."""
    df = scores[scores["estimator"] == estimator]
    n = int(n_layers if n_layers is not None else (df["layer"] + df["span"]).max() + 1)
    M = np.full((n, n), np.nan)
    for l, m, v in zip(df["layer"].astype(int), df["span"].astype(int), df["value"].astype(float)):
        M[l, l + m] = v
    return M


def _norm(M: np.ndarray):
    """A log colour scale when the finite values are positive and span more than a decade (one
    outlier layer, e.g. layer 0's BI ≈ 1, would otherwise flatten the rest)."""
    v = M[np.isfinite(M)]
    if v.size and v.min() > 0 and v.max() / v.min() > 10:
        return LogNorm(vmin=v.min(), vmax=v.max())
    return None


def _panel(ax, M: np.ndarray, title: str, xlabel: str, ylabel: str, cmap: str) -> None:
    norm = _norm(M)
    im = ax.imshow(np.ma.masked_invalid(M), cmap=cmap, origin="upper", interpolation="nearest", norm=norm)
    ax.set_title(title + (" (log colour scale)" if norm is not None else ""), fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    step = max(1, M.shape[0] // 10)
    ticks = list(range(0, M.shape[0], step))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def _save(fig, path: str | Path) -> None:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def score_figure(bi: pd.DataFrame, sbi: pd.DataFrame, path: str | Path, title: str,
                 estimators: Sequence[str] = ("cosine_mean", "released")) -> None:
    """One PNG: a BI/SBI window matrix per estimator."""
    scores = pd.concat([bi, sbi], ignore_index=True)
    present = [e for e in estimators if (scores["estimator"] == e).any()]
    fig, axes = plt.subplots(1, len(present), figsize=(5.6 * len(present), 4.6), squeeze=False)
    fig.subplots_adjust(wspace=0.45)
    for ax, est in zip(axes[0], present):
        _panel(ax, window_matrix(scores, est), ESTIMATOR_TITLES.get(est, est), "last layer of the window",
               "first layer of the window", "viridis")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def npib_figure(S: np.ndarray, path: str | Path, title: str) -> None:
    """One PNG: the NPIB layer × layer matrix."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    _panel(ax, S, "NPIB similarity", "layer j", "layer i", "magma")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
