"""The Snakemake profiles (profiles/slurm, profiles/local) and the SLURM e2e check.

The profile tests read the YAML files and check every key against the flags
that the installed snakemake and slurm executor plugin really define. The
test marked `slurm` runs tests/slurm/run_slurm_e2e.sh on the toy workflow
(starts and stops a real single-node SLURM cluster; root, ~1 min) and only
runs when LAYERPUZZLE_SLURM_TESTS=1.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
LOCAL_PROFILE = REPO / "profiles" / "local" / "config.yaml"
TOY = REPO / "tests" / "slurm" / "toy"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _checker():
    """tests/slurm/check_gpu_requests.py as a module (it is a script, not a package)."""
    path = REPO / "tests" / "slurm" / "check_gpu_requests.py"
    spec = importlib.util.spec_from_file_location("check_gpu_requests", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _snakemake_flags() -> set[str]:
    from snakemake.cli import get_argument_parser

    return set(get_argument_parser()._option_string_actions)


def _plugin_flags() -> set[str]:
    from snakemake_executor_plugin_slurm import ExecutorSettings

    return {"--slurm-" + f.name.replace("_", "-") for f in dataclasses.fields(ExecutorSettings)}


def _eval_resource(expression, attempt: int) -> int:
    """A default-resources value as Snakemake evaluates it (a Python expression)."""
    return int(eval(str(expression), {"__builtins__": {}}, {"attempt": attempt}))


# --- profiles/slurm ------------------------------------------------------------


def test_slurm_profile_keys_are_real_flags():
    profile = _load(SLURM_PROFILE)
    flags = _snakemake_flags()
    unknown = [k for k in profile if f"--{k}" not in flags]
    assert unknown == []
    slurm_keys = {f"--{k}" for k in profile if k.startswith("slurm-")}
    assert slurm_keys, "the profile sets no plugin option"
    assert slurm_keys <= _plugin_flags()


def test_slurm_profile_executor_and_status_without_accounting():
    profile = _load(SLURM_PROFILE)
    assert profile["executor"] == "slurm"
    # sacct without slurmdbd never reports finished jobs: Snakemake would hang
    assert profile["slurm-status-command"] == "squeue"
    assert profile["slurm-no-account"] is True
    # the plugin rejects non-positive values; MinJobAge=300 s default must
    # stay >= 3 x this, or the plugin switches back to sacct
    assert 1 <= profile["slurm-init-seconds-before-status-checks"] <= 100


def test_slurm_profile_resources_scale_with_attempt():
    profile = _load(SLURM_PROFILE)
    resources = profile["default-resources"]
    assert profile["retries"] >= 1
    assert [_eval_resource(resources["mem_mb"], a) for a in (1, 2, 3)] == [4000, 8000, 12000]
    assert [_eval_resource(resources["runtime"], a) for a in (1, 2)] == [60, 120]
    # partition and account are placeholders for the user, not set
    assert "slurm_partition" not in resources and "slurm_account" not in resources


def test_slurm_profile_logs_and_software():
    profile = _load(SLURM_PROFILE)
    assert profile["slurm-logdir"] == "logs/slurm"
    assert profile["slurm-keep-successful-logs"] is True
    assert profile["use-conda"] is False
    assert profile["jobs"] >= 1 and profile["latency-wait"] >= 5


# --- profiles/local ------------------------------------------------------------


def test_local_profile():
    profile = _load(LOCAL_PROFILE)
    assert [k for k in profile if f"--{k}" not in _snakemake_flags()] == []
    assert "executor" not in profile
    assert profile["cores"] == 2
    assert profile["printshellcmds"] is True
    assert profile["keep-going"] is False
    assert profile["rerun-incomplete"] is True
    assert profile["use-conda"] is False


# --- tests/slurm/check_gpu_requests.py ------------------------------------------

SNAKEMAKE_LOG = """\
[Sun Nov 22 16:53:45 2026]
rule cpu_probe:
    output: results/cpu_probe.txt
    jobid: 2
    reason: Forced execution
    resources: tmpdir=<TBD>, mem_mb=4000, mem=4 GB, runtime=60
Shell command: echo
[Sun Nov 22 16:53:45 2026]
rule gpu_probe:
    output: results/gpu_probe.txt
    jobid: 1
    reason: Forced execution
    resources: tmpdir=<TBD>, mem_mb=1000, runtime=5, gpu=1
Job 2 has been submitted with SLURM jobid 3 (log: logs/slurm/rule_cpu_probe/3.log).
Job 1 has been submitted with SLURM jobid 4 (log: logs/slurm/rule_gpu_probe/4.log).
localrule all_tables:
    input: results/gpu_probe.txt, results/cpu_probe.txt
    jobid: 0
    resources: tmpdir=/tmp, gpu=0
"""

# `scontrol show job` of a `sbatch --gpus=1` job (SLURM 22.05), abridged
SCONTROL_GPU_JOB = """\
JobId=4 JobName=layerpuzzle_5a73
   JobState=COMPLETED Reason=None Dependency=(null)
   TRES=cpu=1,mem=1000M,node=1,billing=1
   TresPerJob=gres:gpu:1
"""
SCONTROL_CPU_JOB = """\
JobId=3 JobName=layerpuzzle_5a73
   JobState=COMPLETED Reason=None Dependency=(null)
   TRES=cpu=1,mem=4000M,node=1,billing=1
   Comment=rule_cpu_probe
"""


def test_checker_parses_rules_gpus_and_slurm_ids():
    check = _checker()
    jobs = check.parse_snakemake_log(SNAKEMAKE_LOG)
    assert jobs == [
        check.SubmittedJob(2, "cpu_probe", 0, "3"),
        check.SubmittedJob(1, "gpu_probe", 1, "4"),
    ]


def test_checker_reads_gpu_request_from_scontrol():
    check = _checker()
    assert check.slurm_requested_gpu(SCONTROL_GPU_JOB) is True
    assert check.slurm_requested_gpu(SCONTROL_CPU_JOB) is False
    assert check.slurm_requested_gpu("   TresPerNode=gres:gpu:a100:2\n") is True
    assert check.slurm_requested_gpu("   TresPerNode=gres:fpga:1\n") is False


def test_checker_flags_each_mismatch():
    check = _checker()
    jobs = check.parse_snakemake_log(SNAKEMAKE_LOG)
    assert check.violations(jobs, {"3": False, "4": True}, {"gpu_probe"}) == []
    missing = check.violations(jobs, {"3": False, "4": False})
    assert len(missing) == 1 and "gpu_probe" in missing[0]
    extra = check.violations(jobs, {"3": True, "4": True})
    assert len(extra) == 1 and "cpu_probe" in extra[0]
    assert len(check.violations(jobs, {"3": False, "4": True}, {"other"})) == 1
    assert check.violations([], {}) != []


# --- the real cluster ------------------------------------------------------------


@pytest.mark.slurm
@pytest.mark.skipif(os.environ.get("LAYERPUZZLE_SLURM_TESTS") != "1",
                    reason="set LAYERPUZZLE_SLURM_TESTS=1 (root; starts a SLURM cluster)")
def test_toy_workflow_on_real_slurm():
    results = TOY / "results"
    shutil.rmtree(results, ignore_errors=True)
    env = dict(os.environ, E2E_EXPECT_GPU_RULES="gpu_probe", E2E_TIMEOUT_S="300")
    run = subprocess.run(
        [str(REPO / "tests/slurm/run_slurm_e2e.sh"), str(TOY), "--forceall", "all_tables"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert (results / "gpu_probe.txt").read_text() == "CUDA_VISIBLE_DEVICES=0\n"
    assert (results / "cpu_probe.txt").read_text() == "CUDA_VISIBLE_DEVICES=unset\n"
    # first attempt got 4000 MB and failed; the retry was granted 8000 MB
    assert (results / "retry_probe.txt").read_text() == "8000\n"


# --- the profile by name ----------------------------------------------------------


def test_profile_by_name_dry_run(tmp_path, monkeypatch, mirror):
    """`snakemake --profile slurm all_tables` works once profiles/slurm is linked into the user's Snakemake
    config directory (README); a dry run needs no SLURM."""
    from workflow_utils import scheduled_jobs, snakemake, tiny_config

    xdg = tmp_path / "xdg"
    (xdg / "snakemake").mkdir(parents=True)
    (xdg / "snakemake" / "slurm").symlink_to(REPO / "profiles" / "slurm")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    work = tmp_path / "work"
    work.mkdir()
    res = snakemake(work, tiny_config(work), "--profile", "slurm", "-n", "all_tables")
    out = res.stdout + res.stderr
    assert "Using profile slurm" in out
    jobs = scheduled_jobs(out)
    assert jobs["prepare_model"] == 1 and jobs["evaluate_checkpoint"] == 1 and jobs["all_tables"] == 1
