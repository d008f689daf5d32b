"""The manifest: every artifact under results/, its sha256, and its provenance chain.

An artifact is a declared output of a job (file or directory; a directory's
hash is :func:`layerpuzzle.provenance.sha256_path`, without the records inside)
or any other file under results/ (which then has no record).  The chain of an
artifact is walked through the records: artifact -> the record of the job that
wrote it -> that job's inputs -> their records ... down to the roots, the inputs
no job produced (data mirror files, resources of the repository).  Checks:

* tampered:   sha256 on disk != the sha256 its producing job recorded;
* stale_input: a job recorded input X with sha256 a, X's own record says b;
* external_input_changed: a root's sha256 on disk != the one a job recorded;
* no_record, missing, input_missing, bad_record, conflicting_records;
* dirty_tree / mixed_code_versions: the code version is not exact / not unique.

Temporary paths of atomic writes (``.<name>.tmp-XXXX`` and everything inside
one, :func:`layerpuzzle.atomic.is_temporary`) are not artifacts: a killed job
leaves them, its next run removes them, and the audit leaves them out.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..atomic import is_temporary
from ..provenance import SKIP_IN_DIR_HASH, sha256_path
from .findings import Finding
from .records import FileRef, JobRecord, is_record_file, load_records


@dataclass
class Artifact:
    """One artifact: where, what is on disk now, and what its producing job recorded."""

    path: str
    kind: str  # file | dir | absent
    sha256: str | None  # on disk now (None: absent)
    rule: str | None = None
    record: str | None = None  # the record file (first copy)
    recorded_sha256: str | None = None
    status: str = "ok"  # ok | tampered | no_record | missing
    chain_ok: bool = True


@dataclass(frozen=True)
class Lineage:
    """An artifact's provenance chain: upstream artifacts, roots, jobs, seeds and code versions."""

    ancestors: tuple[str, ...]
    roots: tuple[FileRef, ...]
    jobs: tuple[str, ...]
    seeds: dict[str, int | None]
    commits: tuple[str, ...]
    dirty: bool


@dataclass
class Manifest:
    workdir: Path
    artifacts: dict[str, Artifact]
    records: list[JobRecord]
    producers: dict[str, JobRecord]
    roots: dict[str, str | None]  # root input path -> sha256 on disk now (None: absent)
    findings: list[Finding] = field(default_factory=list)

    def lineage(self, path: str) -> Lineage:
        """Breadth-first walk from ``path`` through producing jobs to the roots."""
        ancestors: list[str] = []
        roots: dict[str, FileRef] = {}
        jobs: dict[str, JobRecord] = {}
        queue, seen = deque([path]), {path}
        while queue:
            current = queue.popleft()
            job = self.producers.get(current)
            if job is None or job.job_id in jobs:
                continue
            jobs[job.job_id] = job
            for ref in job.input_refs:
                if ref.path in self.producers or ref.path in self.artifacts:
                    if ref.path not in seen:
                        seen.add(ref.path)
                        ancestors.append(ref.path)
                        queue.append(ref.path)
                else:
                    roots.setdefault(ref.path, ref)
        commits = sorted({str(j.git.get("commit")) for j in jobs.values()})
        return Lineage(
            ancestors=tuple(ancestors),
            roots=tuple(roots.values()),
            jobs=tuple(jobs),
            seeds={jid: j.seed for jid, j in jobs.items()},
            commits=tuple(commits),
            dirty=any(j.git.get("dirty") for j in jobs.values()),
        )


def ignored(path: str, patterns: Iterable[str]) -> bool:
    """``path`` matches one of the shell-style ``patterns`` (``*`` also matches ``/``)."""
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


class _Hashes:
    """sha256 of paths relative to the working directory (absolute ones as they are), computed once."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._cache: dict[str, str | None] = {}

    def __call__(self, path: str) -> str | None:
        if path not in self._cache:
            full = Path(path) if os.path.isabs(path) else self.workdir / path
            self._cache[path] = sha256_path(full) if full.exists() else None
        return self._cache[path]


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "none"


def _producers(records: list[JobRecord], findings: list[Finding]) -> dict[str, JobRecord]:
    """Output path -> the job that wrote it (the latest one when two records claim it)."""
    producers: dict[str, JobRecord] = {}
    for job in sorted(records, key=lambda j: j.started_unix):
        for ref in job.output_refs:
            old = producers.get(ref.path)
            if old is not None and old != job:
                findings.append(Finding("conflicting_records", ref.path,
                                        f"{ref.path}: records {old.sources[0]} (rule {old.rule}) and "
                                        f"{job.sources[0]} (rule {job.rule}) both claim it; the later one is used"))
            producers[ref.path] = job
    return producers


def _covered(rel: str, producers: dict[str, JobRecord]) -> bool:
    """The file is a declared output, or lies inside a declared directory output."""
    parts = rel.split("/")
    return any("/".join(parts[:i]) in producers for i in range(len(parts), 0, -1))


def _disk_files(workdir: Path, roots: Iterable[str], ignore: Iterable[str]) -> list[str]:
    out = []
    for root in roots:
        base = workdir / root
        if not base.is_dir():
            continue
        for p in base.rglob("*"):
            rel = p.relative_to(workdir).as_posix()
            if (p.is_file() and p.name not in SKIP_IN_DIR_HASH and not is_record_file(p) and not ignored(rel, ignore)
                    and not is_temporary(p.relative_to(base))):
                out.append(rel)
    return sorted(out)


def build_manifest(workdir: str | os.PathLike, *, roots: Iterable[str] = ("results",), ignore: Iterable[str] = (),
                   expected: Iterable[str] = ()) -> Manifest:
    """Hash every artifact under ``roots``, match it to its record and check every chain.

    ``expected``: paths that must exist (the all_tables outputs); ``ignore``: patterns of
    paths that are not artifacts (see :func:`ignored`).
    """
    workdir = Path(workdir)
    roots, ignore = tuple(roots), tuple(ignore)
    findings: list[Finding] = []
    records, bad = load_records(workdir, roots, ignore)
    findings += [Finding("bad_record", path, f"{path}: unreadable provenance record ({err})") for path, err in bad]
    producers = _producers(records, findings)
    sha = _Hashes(workdir)
    artifacts: dict[str, Artifact] = {}

    # declared outputs against their records
    for path, job in sorted(producers.items()):
        if ignored(path, ignore):
            continue
        recorded = next(r.sha256 for r in job.output_refs if r.path == path)
        full = workdir / path
        art = Artifact(path, "dir" if full.is_dir() else ("file" if full.exists() else "absent"), sha(path),
                       rule=job.rule, record=job.sources[0], recorded_sha256=recorded)
        if art.sha256 is None:
            art.status = "missing"
            findings.append(Finding("missing", path, f"{path}: written by rule {job.rule} "
                                    f"(record {job.sources[0]}) but no longer on disk"))
        elif art.sha256 != recorded:
            art.status = "tampered"
            findings.append(Finding("tampered", path, f"{path}: sha256 on disk {_short(art.sha256)} != "
                                    f"{_short(recorded)} recorded by rule {job.rule} ({job.sources[0]}); "
                                    "the file was altered after the job wrote it"))
        artifacts[path] = art

    # files nobody recorded
    for rel in _disk_files(workdir, roots, ignore):
        if _covered(rel, producers):
            continue
        artifacts[rel] = Artifact(rel, "file", sha(rel), status="no_record")
        findings.append(Finding("no_record", rel, f"{rel}: no provenance record names it as an output"))

    for path in expected:
        if path not in artifacts and not (workdir / path).exists():
            artifacts[path] = Artifact(path, "absent", None, status="missing")
            findings.append(Finding("missing", path, f"{path}: an all_tables output that is not on disk"))

    # chains: each recorded input against its own record, or (roots) against the disk
    root_hashes: dict[str, str | None] = {}
    broken_jobs: set[str] = set()
    for job in records:
        consumer = job.output_refs[0].path if job.output_refs else job.sources[0]
        for ref in job.input_refs:
            producer = producers.get(ref.path)
            if producer is not None:
                recorded = next(r.sha256 for r in producer.output_refs if r.path == ref.path)
                if recorded != ref.sha256:
                    broken_jobs.add(job.job_id)
                    findings.append(Finding(
                        "stale_input", consumer,
                        f"{consumer} (rule {job.rule}) was computed from {ref.path} with sha256 {_short(ref.sha256)}, "
                        f"but {ref.path}'s record (rule {producer.rule}) says {_short(recorded)}: "
                        "the input was re-made after this job ran"))
                if sha(ref.path) is None:
                    findings.append(Finding("input_missing", ref.path,
                                            f"{ref.path}: input of {consumer} (rule {job.rule}) is gone; "
                                            "its record remains, the bytes cannot be checked"))
                continue
            if not ref.external and any(ref.path == r or ref.path.startswith(r.rstrip("/") + "/") for r in roots):
                if sha(ref.path) is None:  # an unrecorded input that still exists is flagged no_record above
                    broken_jobs.add(job.job_id)
                    findings.append(Finding("input_missing", ref.path,
                                            f"{ref.path}: input of {consumer} (rule {job.rule}) is gone and "
                                            "no record describes it"))
                continue
            current = sha(ref.path)
            root_hashes[ref.path] = current
            if current is None:
                findings.append(Finding("external_input_missing", ref.path,
                                        f"{ref.path}: input of {consumer} (rule {job.rule}) not found on this machine"))
            elif current != ref.sha256:
                broken_jobs.add(job.job_id)
                findings.append(Finding("external_input_changed", ref.path,
                                        f"{ref.path}: sha256 now {_short(current)}, but {consumer} (rule {job.rule}) "
                                        f"read {_short(ref.sha256)}"))

    manifest = Manifest(workdir, artifacts, records, producers, root_hashes, findings)
    findings += _code_version_findings(records)
    for art in artifacts.values():
        lin = manifest.lineage(art.path)
        art.chain_ok = art.status == "ok" and not (set(lin.jobs) & broken_jobs) and all(
            artifacts[a].status == "ok" for a in lin.ancestors if a in artifacts)
    return manifest


def _code_version_findings(records: list[JobRecord]) -> list[Finding]:
    """One finding for dirty trees and one for more than one commit (not one per job)."""
    out = []
    by_commit: dict[str, list[JobRecord]] = defaultdict(list)
    for job in records:
        by_commit[str(job.git.get("commit"))].append(job)
    dirty = [j for j in records if j.git.get("dirty")]
    if dirty:
        rules = sorted({j.rule for j in dirty})
        out.append(Finding("dirty_tree", dirty[0].job_id,
                           f"{len(dirty)} of {len(records)} jobs ran from a git tree with uncommitted changes "
                           f"(rules: {', '.join(rules)}); their code version is the commit plus unrecorded edits"))
    if len(by_commit) > 1:
        parts = [f"{c[:12]} ({len(js)} jobs)" for c, js in sorted(by_commit.items())]
        out.append(Finding("mixed_code_versions", "results/",
                           f"the artifacts come from {len(by_commit)} code versions: {', '.join(parts)}"))
    return out


def tree_state(workdir: str | os.PathLike, roots: Iterable[str] = ("results",), ignore: Iterable[str] = ()) -> str:
    """A digest of (path, size, mtime) of every file under ``roots`` but the ignored and temporary ones.

    Cheap (stat only); rule audit takes it as a parameter so that Snakemake re-runs
    the audit whenever anything under results/ changed since the last audit.
    """
    workdir, ignore = Path(workdir), tuple(ignore)
    h = hashlib.sha256()
    for root in roots:
        base = workdir / root
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(workdir).as_posix()
            if p.is_file() and not ignored(rel, ignore) and not is_temporary(p.relative_to(base)):
                st = p.stat()
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
