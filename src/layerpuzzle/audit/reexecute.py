"""Re-execution of recorded jobs in a scratch directory, through the real workflow.

For a sampled job: its recorded inputs inside the working directory are linked
(symlinks) into an empty scratch directory at the same relative paths, and

    snakemake OUTPUTS... -s SNAKEFILE -d SCRATCH --configfile CONFIG --cores N \
        --allowed-rules RULE --forcerun RULE

runs the job again: the same rule, script and library code as the real run, the
same config, the linked inputs taken as given (``--allowed-rules`` keeps every
other rule out of the DAG).  Its outputs are then compared with the recorded
sha256 (:mod:`.compare`).  On CPU every output is expected to be identical.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..provenance import sha256_path
from .compare import OutputComparison, compare_output
from .manifest import Manifest, ignored
from .records import JobRecord
from .settings import JobSelector


@dataclass(frozen=True)
class Reexecution:
    """The outcome of re-running one job."""

    job_id: str
    rule: str
    record: str
    selected_by: str
    scratch: str
    log: str
    returncode: int
    seconds: float
    recorded_seconds: float
    outputs: tuple[OutputComparison, ...]

    @property
    def reproduced(self) -> bool:
        return self.returncode == 0 and all(o.equal for o in self.outputs)


def eligible(job: JobRecord, manifest: Manifest) -> str | None:
    """None when the job can be re-run faithfully; else why not (inputs or outputs not as recorded)."""
    for ref in job.input_refs:
        current = manifest.roots.get(ref.path) if ref.external else _current(manifest, ref.path)
        if current != ref.sha256:
            return f"input {ref.path} is not the recorded version"
    for ref in job.output_refs:
        art = manifest.artifacts.get(ref.path)
        if art is None or art.status != "ok":
            return f"output {ref.path} is not as recorded"
    return None


def _current(manifest: Manifest, path: str) -> str | None:
    art = manifest.artifacts.get(path)
    if art is not None:
        return art.sha256
    full = manifest.workdir / path
    return sha256_path(full) if full.exists() else None


def select_jobs(manifest: Manifest, selectors: Sequence[JobSelector], pick: str = "fastest",
                seed: int = 0) -> tuple[list[tuple[JobRecord, str]], list[str]]:
    """([(job, the selector's pattern)], notes): ``n`` eligible jobs per selector, no job twice.

    ``fastest``: shortest recorded wall time first; ``random``: a seeded shuffle.
    """
    chosen: list[tuple[JobRecord, str]] = []
    notes: list[str] = []
    taken: set[str] = set()
    jobs = sorted(manifest.records, key=lambda j: j.job_id)
    for sel in selectors:
        matching = [j for j in jobs if (sel.rule is None or j.rule == sel.rule)
                    and any(ignored(r.path, [sel.artifact]) for r in j.output_refs)]
        candidates = []
        for j in matching:
            why = eligible(j, manifest)
            if why:
                notes.append(f"{sel.artifact}: skipped {j.job_id}: {why}")
            elif j.job_id not in taken:
                candidates.append(j)
        if pick == "random":
            random.Random(seed).shuffle(candidates)
        else:
            candidates.sort(key=lambda j: (j.wall_time_s, j.job_id))
        for j in candidates[: sel.n]:
            chosen.append((j, sel.artifact))
            taken.add(j.job_id)
        if len(candidates) < sel.n:
            notes.append(f"{sel.artifact}: {len(candidates)} eligible job(s) of {sel.n} requested")
    return chosen, notes


def stage_inputs(job: JobRecord, workdir: Path, scratch: Path) -> None:
    """Link every recorded input inside ``workdir`` into ``scratch`` at the same relative path."""
    for ref in job.input_refs:
        if ref.external:
            continue
        link = scratch / ref.path
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to((workdir / ref.path).resolve(), target_is_directory=(workdir / ref.path).is_dir())


def snakemake_command(job: JobRecord, *, snakefile: str, configfile: str, scratch: Path, cores: int) -> list[str]:
    """The command that re-runs ``job``: its outputs as targets, only its rule allowed, forced."""
    targets = [ref.path for ref in job.output_refs]
    return [sys.executable, "-m", "snakemake", *targets, "-s", str(snakefile), "-d", str(scratch),
            "--configfile", str(configfile), "--cores", str(cores), "--allowed-rules", job.rule,
            "--forcerun", job.rule]


def clean_env() -> dict[str, str]:
    """This process' environment without a default Snakemake profile (the re-run is local)."""
    env = dict(os.environ)
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def reexecute(job: JobRecord, *, workdir: Path, scratch: Path, log: Path, snakefile: str, configfile: str,
              cores: int = 1, timeout_s: int = 3600, selected_by: str = "") -> Reexecution:
    """Re-run ``job`` in ``scratch`` (emptied first) and compare its outputs with the record."""
    workdir = Path(workdir)
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    stage_inputs(job, workdir, scratch)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = snakemake_command(job, snakefile=snakefile, configfile=configfile, scratch=scratch, cores=cores)
    started = time.time()
    with open(log, "w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        try:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=clean_env(),
                                timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n[audit] timed out after {timeout_s} s\n")
            rc = 124
    seconds = time.time() - started
    outputs = tuple(compare_output(ref.path, ref.sha256, workdir / ref.path, scratch / ref.path)
                    for ref in job.output_refs) if rc == 0 else ()
    return Reexecution(job.job_id, job.rule, job.sources[0], selected_by, str(scratch), str(log), rc,
                       round(seconds, 1), job.wall_time_s, outputs)
