"""The paper's tables rebuilt from our numbers, compared with the paper, and rendered.

* :mod:`.sparsity_table` — Table 3 (parameters and sparsity per model and target);
* :mod:`.results` — Tables 8–10 layout (7 task scores, Avg, RPT, C4 and Wiki-2 PPL);
* :mod:`.paper_join` — our rows beside the paper's rows of Tables 8–10;
* :mod:`.scores` — Avg and RPT (docs/evaluation.md);
* :mod:`.paper` — the paper's tables in ``resources/paper``;
* :mod:`.table4` — Table 4 (layer-removal orders of the DLP baselines);
* :mod:`.come_ablations` — Tables 11–14 (CoMe ablations);
* :mod:`.posttrain` — Table 7 and the post-training comparison;
* :mod:`.laco` — the LaCo paper's Tables 1/2/22, 3, 4 and 5/20 (Dense, LLM-Pruner, SliceGPT, LaCo);
* :mod:`.render` — CSV, Markdown and LaTeX output (atomic writes).

Table builders live here and in :mod:`layerpuzzle.figures`; nothing under
``methods/`` or ``distill/`` imports them (``tests/test_layering.py``).
"""

from .columns import EXTRA_TASK_COLUMNS, PPL_COLUMNS, SCORE_COLUMNS, TASK_COLUMNS
from .paper import load_paper_results, load_paper_sparsity, paper_sparsity_label
from .paper_join import compare_results_with_paper
from .render import latex_table, markdown_table, write_csv, write_latex, write_markdown, write_table
from .results import METHOD_ORDER, results_table
from .scores import average, relative_performance
from .sparsity_table import compare_sparsity_table, sparsity_table

__all__ = [
    "EXTRA_TASK_COLUMNS",
    "METHOD_ORDER",
    "PPL_COLUMNS",
    "SCORE_COLUMNS",
    "TASK_COLUMNS",
    "average",
    "compare_results_with_paper",
    "compare_sparsity_table",
    "latex_table",
    "load_paper_results",
    "load_paper_sparsity",
    "markdown_table",
    "paper_sparsity_label",
    "relative_performance",
    "results_table",
    "sparsity_table",
    "write_csv",
    "write_latex",
    "write_markdown",
    "write_table",
]
