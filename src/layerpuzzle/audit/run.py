"""The audit end to end: manifest, re-execution, paper deltas, Snakemake's state, verdict.

The audit fails when a finding's kind is in ``settings.fail_on`` (by default:
an altered or missing artifact, a broken chain, a job that does not reproduce,
a paper delta outside its band); :func:`verdict` names every such artifact.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .findings import Finding, failing
from .manifest import Manifest, build_manifest
from .paper_deltas import PaperDelta, paper_deltas
from .reexecute import Reexecution, reexecute, select_jobs
from .settings import AuditSettings
from .snakemake_state import SnakemakeState, capture_state


class AuditFailed(RuntimeError):
    """The audit found something in ``fail_on``; the message names each artifact."""


@dataclass
class AuditResult:
    workdir: str
    settings: AuditSettings
    manifest: Manifest
    reexecutions: list[Reexecution] = field(default_factory=list)
    selection_notes: list[str] = field(default_factory=list)
    deltas: list[PaperDelta] = field(default_factory=list)
    state: SnakemakeState | None = None

    @property
    def findings(self) -> list[Finding]:
        out = list(self.manifest.findings)
        out += [delta_finding(d) for d in self.deltas if not d.within]
        out += [reexecution_finding(r) for r in self.reexecutions if not r.reproduced]
        if self.state is not None:
            out += self.state.findings()
        return out

    @property
    def failing(self) -> list[Finding]:
        return failing(self.findings, self.settings.fail_on)

    @property
    def passed(self) -> bool:
        return not self.failing


def delta_finding(d: PaperDelta) -> Finding:
    return Finding("paper_delta", d.table, f"{d.table} [{d.row}] {d.column}: ours {d.ours:.2f}, paper {d.paper:.2f}, "
                   f"delta {d.delta:+.2f} outside ±{d.allowed:.2f} ({d.kind})")


def reexecution_finding(r: Reexecution) -> Finding:
    first = r.job_id.split(":", 1)[1]
    if r.returncode != 0:
        return Finding("not_reproduced", first, f"{first}: re-running rule {r.rule} failed "
                       f"(exit {r.returncode}); log: {r.log}")
    bad = [o for o in r.outputs if not o.equal]
    parts = [f"{o.path} ({o.outcome}" + (f": {', '.join(o.differing_files[:5])}" if o.differing_files else "") + ")"
             for o in bad]
    return Finding("not_reproduced", bad[0].path, f"rule {r.rule} re-executed in {r.scratch} gave other bytes "
                   f"than recorded: {'; '.join(parts)}")


def run_audit(workdir: str | Path, settings: AuditSettings, *, out_dir: str | Path, snakefile: str,
              configfile: str, expected: Sequence[str] = (), targets: Sequence[str] = ("all_tables",),
              cores: int = 1, snakemake_state: bool = True) -> AuditResult:
    """Audit the run in ``workdir``; side files (re-execution logs, scratch, Snakemake's
    summary) go to ``out_dir``.  ``configfile`` must hold the run's effective config."""
    workdir, out_dir = Path(workdir), Path(out_dir)
    for stale in (out_dir / "scratch", out_dir / "reexecute"):  # left by an earlier audit
        shutil.rmtree(stale, ignore_errors=True)
    manifest = build_manifest(workdir, ignore=settings.ignore, expected=expected)
    result = AuditResult(str(workdir.resolve()), settings, manifest,
                         deltas=paper_deltas(workdir, settings.tolerance))
    rex = settings.reexecute
    with ThreadPoolExecutor(max_workers=1) as pool:  # Snakemake's summary meanwhile (read only, no lock)
        state = pool.submit(capture_state, workdir, snakefile=snakefile, configfile=configfile, targets=targets,
                            out_dir=out_dir) if snakemake_state else None
        if rex.enabled:
            chosen, result.selection_notes = select_jobs(manifest, rex.jobs, rex.pick, rex.seed)
            for i, (job, pattern) in enumerate(chosen):
                name = f"{i:02d}-{job.rule}"
                run = reexecute(job, workdir=workdir, scratch=out_dir / "scratch" / name,
                                log=out_dir / "reexecute" / f"{name}.log", snakefile=snakefile,
                                configfile=configfile, cores=cores, timeout_s=rex.timeout_s, selected_by=pattern)
                if run.reproduced and not rex.keep_scratch:
                    shutil.rmtree(run.scratch, ignore_errors=True)
                result.reexecutions.append(run)
        result.state = state.result() if state is not None else None
    return result


def verdict(result: AuditResult) -> str:
    """One line for a pass; for a failure, one line per failing finding, naming its artifact."""
    if result.passed:
        n_eq = sum(r.reproduced for r in result.reexecutions)
        return (f"audit PASSED: {len(result.manifest.artifacts)} artifacts as recorded, {n_eq}/"
                f"{len(result.reexecutions)} re-executed jobs reproduced, {len(result.deltas)} paper deltas within "
                f"tolerance, {len(result.findings)} warning(s)")
    lines = [f"audit FAILED: {len(result.failing)} finding(s) in fail_on:"]
    lines += [f"  [{f.kind}] {f.message}" for f in result.failing]
    return "\n".join(lines)
