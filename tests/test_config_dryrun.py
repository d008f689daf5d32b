"""Config behaviour seen through Snakemake itself (dry runs: no job runs, a DAG is built)."""
import re

import pytest

from conftest import REPO
from workflow_utils import scheduled_jobs, snakemake

pytestmark = pytest.mark.slow  # each test builds a DAG with Snakemake (30-60 s)

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


def test_nested_numbers_given_with_config_on_the_command_line(tmp_path, mirror):
    """`--config 'run={"targets": [0.2, 0.299]}'`: Snakemake passes the nested numbers as text ('0.2'); they are
    read as the numbers the schema asks for, and the DAG holds sp20 and sp29.9 (a target that is not a whole
    percent keeps its exact value in the path), and no sp25 from the config file."""
    from workflow_utils import tiny_config

    res = snakemake(tmp_path, tiny_config(tmp_path, enable=("reverse",)), "-n", "all_evaluations",
                    "--config", 'run={"targets": [0.2, 0.299], "models": ["random-llama"]}',
                    'methods={"reverse": {"enabled": true, "variants": [{"keep_last": 1}]}}')
    out = res.stdout + res.stderr
    assert "results/random-llama/pruned/reverse/sp20/keep_last=1" in out
    assert "results/random-llama/pruned/reverse/sp29.9/keep_last=1" in out
    assert "/sp25/" not in out and "/sp30/" not in out
    assert scheduled_jobs(out)["evaluate_checkpoint"] == 3  # dense + reverse at 20 % and 29.9 %


def _slugs(out, method, target="sp25"):
    """Path components of results/random-llama/pruned/<method>/<target>/ in a dry run's listing (whose lists
    are ', '-separated; a slug holds commas but no spaces)."""
    return set(re.findall(rf"results/random-llama/pruned/{method}/{target}/([^\s;]+?)(?=,?\s|;|$)", out))


@pytest.mark.parametrize("come, expected", [
    ({"enabled": True}, "default"),  # today's path for today's settings
    ({"enabled": True, "p": 2}, "p=2"),
    ({"enabled": True, "p": 2, "recompute": "full"}, "p=2"),  # execution only: not in the path
])
def test_method_level_settings_enter_the_checkpoint_path(tmp_path, mirror, come, expected):
    """Two configs that differ only in a method-level setting (methods.come.p) build two checkpoints; CoMe-sp
    distils the one its config built."""
    from workflow_utils import tiny_config

    cfg = tiny_config(tmp_path, enable=("come", "come_sp"))
    import yaml

    c = yaml.safe_load(cfg.read_text())
    c["methods"]["come"] = come
    c["methods"]["come_sp"] = {"enabled": True, "variants": [{"steps": 2}]}
    cfg.write_text(yaml.safe_dump(c))
    out = snakemake(tmp_path, cfg, "-n", "all_evaluations").stdout
    assert _slugs(out, "come") == {expected}
    # CoMe-sp (its default target: 30 %) distils the CoMe checkpoint of this config at 30 %
    assert _slugs(out, "come", "sp30") == {expected}
    assert len(_slugs(out, "come_sp", "sp30")) == 1
