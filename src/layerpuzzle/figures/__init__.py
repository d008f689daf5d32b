"""Figures of the reproduction (matplotlib, Agg backend): layer-similarity heat maps."""

from .heatmaps import npib_figure, score_figure, window_matrix
from .index import figures_markdown

__all__ = ["npib_figure", "score_figure", "window_matrix", "figures_markdown"]
