"""Config behaviour seen through Snakemake itself (dry runs: no job runs, a DAG is built)."""
import re

import pytest

from conftest import REPO
from workflow_utils import scheduled_jobs, snakemake

POSTTRAIN = ("come_sp", "come_mp", "streamline", "fusegpt_train")


def test_paper_config_post_trains_llama2_7b_and_qwen3_4b_at_30_only(tmp_path):
    """config/paper.yaml: the four post-training methods run on the two models of Table 7 at ~30 %,
    not on all seven (was 28 GPU jobs); every other method still covers the seven models."""
    res = snakemake(tmp_path, REPO / "config" / "paper.yaml", "-n", "all_tables")
    out = res.stdout + res.stderr
    jobs = scheduled_jobs(out)
    assert {k: jobs.get(k) for k in POSTTRAIN} == {k: 2 for k in POSTTRAIN}
    built = set(re.findall(r"results/([^/\s]+)/pruned/(come_sp|come_mp|streamline|fusegpt_train)/(sp\d+)/", out))
    assert built == {(m, k, "sp30") for m in ("llama2-7b", "qwen3-4b") for k in POSTTRAIN}
    assert jobs["come"] >= 7 * 3 and jobs["prepare_model"] == 7
