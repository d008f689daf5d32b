"""Snakemake's own view of the run, captured into the audit directory.

``snakemake --summary`` (every output file with its date, rule, status and plan)
and ``snakemake --list-changes params|code|input`` (outputs whose parameters,
code or inputs changed since they were made), run concurrently, each with
``--nolock`` so they can run while the audit job holds the working directory's lock.

Pending work is read from the summary's ``plan`` column (and its ``status``
says why, e.g. ``params changed``).  ``--list-changes params`` is captured but
not used for findings: in Snakemake 9.27.1 it lists one output of EVERY job,
changed or not (``persistence.ParamsChange.__or__`` returns an empty change that
still carries its file, and ``__iter__`` yields the files).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..atomic import write_text
from .findings import Finding
from .reexecute import clean_env

CHANGE_KINDS = ("params", "code", "input")
TRUSTED_CHANGE_KINDS = ("code", "input")


@dataclass(frozen=True)
class SnakemakeState:
    """Where the captured outputs are, what they say, and the return code of each command."""

    files: dict[str, str]  # summary / list-changes-<kind> -> captured file
    pending: list[dict[str, str]]  # summary rows whose plan is not "no update"
    changes: dict[str, list[str]]  # kind -> output files listed by --list-changes
    returncodes: dict[str, int] = field(default_factory=dict)

    def findings(self) -> list[Finding]:
        out = []
        if self.pending:
            rows = ", ".join(f"{r['output_file']} ({r.get('status', '?')})" for r in self.pending[:5])
            more = f" and {len(self.pending) - 5} more" if len(self.pending) > 5 else ""
            out.append(Finding("pending", self.pending[0]["output_file"],
                               f"snakemake --summary plans an update of {len(self.pending)} file(s): {rows}{more}"))
        for kind in TRUSTED_CHANGE_KINDS:
            files = self.changes.get(kind, [])
            if files:
                out.append(Finding("pending", files[0], f"snakemake --list-changes {kind}: {len(files)} file(s) "
                                   f"made with other {kind} than now, e.g. {', '.join(files[:3])}"))
        for what, code in self.returncodes.items():
            if code != 0:
                out.append(Finding("snakemake_error", self.files[what],
                                   f"snakemake {what} (captured in {self.files[what]}) exited with {code}"))
        return out


def parse_summary(tsv: str) -> list[dict[str, str]]:
    """Rows of ``snakemake --summary`` (tab separated, header first)."""
    lines = [line for line in tsv.splitlines() if "\t" in line]
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def capture_state(workdir: str | Path, *, snakefile: str, configfile: str, targets: Sequence[str],
                  out_dir: str | Path, timeout_s: int = 900) -> SnakemakeState:
    """Run the summary and the three list-changes (concurrently) into ``out_dir`` and parse them."""
    workdir, out_dir = Path(workdir), Path(out_dir)
    base = [sys.executable, "-m", "snakemake", *targets, "-s", str(snakefile), "-d", str(workdir),
            "--configfile", str(configfile), "--nolock"]
    commands = {"summary": ["--summary"], **{f"list-changes-{k}": ["--list-changes", k] for k in CHANGE_KINDS}}
    procs = {what: subprocess.Popen(base + flags, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=clean_env()) for what, flags in commands.items()}
    files, codes, texts = {}, {}, {}
    for what, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            stderr += f"\n[audit] timed out after {timeout_s} s\n"
        codes[what] = proc.returncode
        texts[what] = stdout if proc.returncode == 0 else ""
        files[what] = str(out_dir / (f"snakemake-{what}.tsv" if what == "summary" else f"snakemake-{what}.txt"))
        write_text(files[what], stdout if proc.returncode == 0 else stdout + stderr)
    pending = [r for r in parse_summary(texts["summary"]) if r.get("plan", "no update") != "no update"]
    changes = {k: [ln.strip() for ln in texts[f"list-changes-{k}"].splitlines() if ln.strip()] for k in CHANGE_KINDS}
    return SnakemakeState(files, pending, changes, codes)
