"""`snakemake --report` on a completed tiny run: every table marked with report() is in it.

The run is the one of tests/test_audit.py (random LLaMA, Reverse, cut-down evaluation),
made once per session.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from test_audit import completed_tiny_run
from workflow_utils import snakemake

pytestmark = pytest.mark.slow

# CSV and Markdown of the tables marked in rules/tables.smk (LaTeX stays out)
MARKED = ["results.csv", "results.md", "results_vs_paper.csv", "results_vs_paper.md",
          "table03_sparsity.csv", "table03_sparsity.md", "table03_vs_paper.csv", "table03_vs_paper.md"]


def test_report_zip_and_html(tmp_path_factory, tmp_path, mirror):
    work, cfg = completed_tiny_run(tmp_path_factory.getbasetemp())
    snakemake(work, cfg, "--report", str(tmp_path / "report.zip"))
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        names = z.namelist()
        data = {Path(n).name: n for n in names if "/data/raw/" in n}
        assert set(MARKED) <= set(data), sorted(data)
        assert not [n for n in data if n.endswith(".tex")]
        assert z.read(data["results.csv"]) == (work / "results/tables/results.csv").read_bytes()
        assert "report/report.html" in names

    snakemake(work, cfg, "--report", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text()
    for text in ("Table 3: sparsity", "Tables 8-10: results", "all models",
                 "layerpuzzle: CoMe", "random-llama"):  # categories, subcategory, workflow.rst with the config
        assert text in html, text
