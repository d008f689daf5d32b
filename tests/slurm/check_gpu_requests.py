"""Check that a Snakemake SLURM run asked SLURM for GPUs exactly where the rules said so.

Reads the main Snakemake log of a `--executor slurm` run. From it, each job's
rule and `gpu` resource (the `rule NAME:` block with `jobid:` and `resources:`)
and each job's SLURM id (the plugin's "Job J has been submitted with SLURM
jobid S" line). Then `scontrol show job S` gives what SLURM recorded as the
request (TresPerJob / TresPerNode / TresPerTask = gres:gpu:N). The rule
holds when: every submitted job with gpu > 0 requested a GPU from SLURM, and
every job with gpu = 0 requested none.

    python tests/slurm/check_gpu_requests.py LOG [--expect-gpu-rules a,b]

`--expect-gpu-rules` also requires the set of rules that got a GPU to be
exactly the given set (guards against a log that shows no GPU job at all).
Exit 0 on success, 1 on a violation (each printed), 2 on unusable input.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

RULE_LINE = re.compile(r"^(?:local)?rule (\S+):\s*$")
JOBID_LINE = re.compile(r"^\s+jobid: (\d+)\s*$")
RESOURCES_LINE = re.compile(r"^\s+resources: (.*)$")
SUBMITTED_LINE = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
GPU_TRES = re.compile(r"(?:^|\s)(?:TresPer\w+|Gres)=\S*\bgpu\b", re.MULTILINE)


@dataclass(frozen=True)
class SubmittedJob:
    """One Snakemake job as submitted to SLURM."""

    snakemake_jobid: int
    rule: str
    gpus_declared: int
    slurm_jobid: str


def _gpu_resource(resources: str) -> int:
    """The integer `gpu=N` in a `resources:` line (0 when absent)."""
    for item in resources.split(","):
        key, _, value = item.strip().partition("=")
        if key == "gpu":
            return int(value)
    return 0


def parse_snakemake_log(text: str) -> list[SubmittedJob]:
    """Submitted jobs, in submission order, with their rule and declared GPUs."""
    jobs: dict[int, tuple[str, int]] = {}
    rule: str | None = None
    jobid: int | None = None
    for line in text.splitlines():
        if m := RULE_LINE.match(line):
            rule, jobid = m.group(1), None
        elif rule and (m := JOBID_LINE.match(line)):
            jobid = int(m.group(1))
            jobs[jobid] = (rule, 0)
        elif rule and jobid is not None and (m := RESOURCES_LINE.match(line)):
            jobs[jobid] = (rule, _gpu_resource(m.group(1)))
    submitted = []
    for m in SUBMITTED_LINE.finditer(text):
        jid = int(m.group(1))
        if jid not in jobs:
            raise ValueError(f"submitted Snakemake job {jid} has no rule block in the log")
        rule_name, gpus = jobs[jid]
        submitted.append(SubmittedJob(jid, rule_name, gpus, m.group(2)))
    return submitted


def slurm_requested_gpu(scontrol_text: str) -> bool:
    """Whether `scontrol show job` output records a GPU request."""
    return GPU_TRES.search(scontrol_text) is not None


def scontrol_show_job(slurm_jobid: str) -> str:
    """`scontrol show job ID` (bounded: 15 s)."""
    return subprocess.run(
        ["scontrol", "show", "job", slurm_jobid],
        capture_output=True, text=True, timeout=15, check=True,
    ).stdout


def violations(
    jobs: list[SubmittedJob],
    requested: dict[str, bool],
    expect_gpu_rules: set[str] | None = None,
) -> list[str]:
    """Human-readable violations; empty when every request matches its rule."""
    problems = []
    if not jobs:
        problems.append("no job was submitted to SLURM (everything up to date?)")
    for job in jobs:
        got = requested[job.slurm_jobid]
        if job.gpus_declared > 0 and not got:
            problems.append(f"{job.rule} (SLURM {job.slurm_jobid}) declares gpu="
                            f"{job.gpus_declared} but SLURM got no GPU request")
        if job.gpus_declared == 0 and got:
            problems.append(f"{job.rule} (SLURM {job.slurm_jobid}) declares no gpu "
                            "but SLURM got a GPU request")
    if expect_gpu_rules is not None:
        gpu_rules = {j.rule for j in jobs if requested[j.slurm_jobid]}
        if gpu_rules != expect_gpu_rules:
            problems.append(f"rules with a GPU: {sorted(gpu_rules)}, "
                            f"expected {sorted(expect_gpu_rules)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="main Snakemake log of the run")
    parser.add_argument("--expect-gpu-rules", default=None,
                        help="comma-separated rules that must be the GPU jobs")
    args = parser.parse_args(argv)
    try:
        jobs = parse_snakemake_log(args.log.read_text())
        requested = {j.slurm_jobid: slurm_requested_gpu(scontrol_show_job(j.slurm_jobid))
                     for j in jobs}
    except (OSError, ValueError, subprocess.SubprocessError) as err:
        print(f"[check_gpu_requests] cannot check: {err}", file=sys.stderr)
        return 2
    for job in jobs:
        print(f"[check_gpu_requests] {job.rule:<24} SLURM {job.slurm_jobid:>6}  "
              f"gpu declared={job.gpus_declared}  GPU requested="
              f"{'yes' if requested[job.slurm_jobid] else 'no'}")
    expect = None if args.expect_gpu_rules is None else {
        r.strip() for r in args.expect_gpu_rules.split(",") if r.strip()}
    problems = violations(jobs, requested, expect)
    for problem in problems:
        print(f"[check_gpu_requests] FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
