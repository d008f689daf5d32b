"""The job wrapper every workflow script uses (layerpuzzle.jobs.run_job).

* A failing job writes its exception with the traceback into the rule's log:
  once through the wrapper directly, once through a real Snakemake ``script:``
  rule (Snakemake runs the script in its own process, so what the process
  prints on the way out never reaches the log).
* At start the wrapper removes what a killed earlier run of the job left beside
  its declared outputs (temporary siblings of atomic writes).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layerpuzzle import jobs
from layerpuzzle.atomic import atomic_dir, atomic_file
from layerpuzzle.jobs import run_job

SRC = Path(jobs.__file__).resolve().parents[1]


class Named(list):
    """The part of Snakemake's Namedlist that run_job uses: a list whose items have names."""

    def __init__(self, **named):
        super().__init__(named.values())
        self._named = named
        self.__dict__.update(named)

    def items(self):
        return self._named.items()

    def get(self, key, default=None):
        return self._named.get(key, default)


class Job:
    def __init__(self, tmp: Path, output: Named, params: Named | None = None):
        self.rule, self.threads = "toy_rule", 1
        self.input = Named(src=str(tmp / "in.txt"))
        (tmp / "in.txt").write_text("input\n")
        self.output, self.params = output, params or Named(seed=3)
        self.log = [str(tmp / "logs" / "toy_rule.log")]
        (tmp / "logs").mkdir(exist_ok=True)  # Snakemake makes the log's directory


def broken_helper(value):
    raise ValueError(f"value {value} is not allowed for key `k`")


def test_a_failing_job_writes_its_traceback_to_the_rules_log(tmp_path):
    job = Job(tmp_path, Named(out=str(tmp_path / "out.txt")))
    before = logging.getLogger().handlers[:]

    def main(j):
        print("progress before the failure")
        broken_helper(42)

    with pytest.raises(ValueError, match="value 42"):
        run_job(job, main)
    text = Path(job.log[0]).read_text()
    assert "rule toy_rule: inputs" in text and "progress before the failure" in text
    assert "ERROR layerpuzzle: rule toy_rule failed: ValueError: value 42 is not allowed for key `k`" in text
    assert "Traceback (most recent call last):" in text
    assert "in broken_helper" in text and 'raise ValueError(f"value {value} is not allowed' in text
    assert text.rstrip().endswith("ValueError: value 42 is not allowed for key `k`")
    assert not (tmp_path / "out.txt").exists()
    assert logging.getLogger().handlers == before  # the closed log is no longer a logging target


def test_a_successful_job_logs_no_error_and_writes_its_record(tmp_path):
    job = Job(tmp_path, Named(out=str(tmp_path / "out.txt"), prov=str(tmp_path / "out.prov.json")))
    run_job(job, lambda j: Path(j.output.out).write_text("ok\n") and None)
    text = Path(job.log[0]).read_text()
    assert "ERROR" not in text and "Traceback" not in text and "done in" in text
    assert json.loads((tmp_path / "out.prov.json").read_text())["seed"] == 3


SNAKEFILE = """
rule toy_fail:
    output: "out.txt"
    log: "logs/toy_fail.log"
    script: "toy_fail.py"
"""

SCRIPT = """
from layerpuzzle.jobs import run_job


def deep_in_the_library(x):
    return {"a": 1}[x]


def main(job):
    deep_in_the_library("missing_key_17")


run_job(snakemake, main)  # noqa: F821
"""


def test_a_failing_snakemake_script_job_puts_the_traceback_in_its_log(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "toy_fail.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(tmp_path / "Snakefile"), "-d", str(tmp_path),
                          "--cores", "1", "out.txt"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode != 0
    text = (tmp_path / "logs" / "toy_fail.log").read_text()
    assert "rule toy_fail: inputs" in text
    assert "Traceback (most recent call last):" in text and "in deep_in_the_library" in text
    assert "KeyError: 'missing_key_17'" in text


def test_a_rerun_removes_what_the_killed_run_left_beside_its_outputs(tmp_path):
    out_file, out_dir = tmp_path / "scores" / "s.safetensors", tmp_path / "pruned" / "sp30"
    stale = [tmp_path / "scores" / ".s.safetensors.tmp-abcd1234", tmp_path / "pruned" / ".sp30.tmp-x_y9zz00"]
    stale[0].parent.mkdir(parents=True)
    stale[0].write_bytes(b"half")
    (stale[1] / "sub").mkdir(parents=True)
    (stale[1] / "sub" / "model.safetensors").write_bytes(b"a full copy of the weights")
    keep = tmp_path / "pruned" / ".sp3.tmp-abcd1234"  # another output's temporary
    keep.mkdir()
    seen = {}

    def main(j):
        seen["at_start"] = [p.exists() for p in stale]
        with atomic_file(j.output.scores) as t:
            t.write_bytes(b"scores")
        with atomic_dir(j.output.ckpt) as t:
            (t / "model.safetensors").write_bytes(b"weights")

    run_job(Job(tmp_path, Named(scores=str(out_file), ckpt=str(out_dir))), main)
    assert seen["at_start"] == [False, False]
    assert keep.exists() and sorted(p.name for p in out_dir.parent.iterdir()) == [".sp3.tmp-abcd1234", "sp30"]
    text = (tmp_path / "logs" / "toy_rule.log").read_text()
    assert text.count("left by an interrupted write") == 2
