"""Provenance records (written by :mod:`layerpuzzle.jobs`) read back for the audit.

A job writes one record: to its ``prov=`` output (``*.prov.json``) and as
``provenance.json`` inside each of its directory outputs.  The copies of one job
are merged here.  Paths are normalised to the working directory: relative POSIX
paths for files inside it, absolute paths for files outside (the data mirror,
resources of the repository).
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..atomic import is_temporary

RECORD_SUFFIX = ".prov.json"
DIR_RECORD = "provenance.json"


@dataclass(frozen=True)
class FileRef:
    """A file or directory as a record saw it: its path and sha256 (:func:`layerpuzzle.provenance.sha256_path`)."""

    path: str
    sha256: str

    @property
    def external(self) -> bool:
        """Outside the working directory (an absolute path after normalisation)."""
        return os.path.isabs(self.path)


@dataclass(frozen=True)
class JobRecord:
    """One job's provenance record; ``sources`` are the record files it was read from."""

    rule: str
    inputs: dict[str, tuple[FileRef, ...]]
    outputs: dict[str, tuple[FileRef, ...]]
    params: dict[str, Any]
    seed: int | None
    git: dict[str, Any]
    packages: dict[str, Any]
    host: str
    started_unix: float
    wall_time_s: float
    extra: dict[str, Any]
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def input_refs(self) -> list[FileRef]:
        return [ref for refs in self.inputs.values() for ref in refs]

    @property
    def output_refs(self) -> list[FileRef]:
        return [ref for refs in self.outputs.values() for ref in refs]

    @property
    def job_id(self) -> str:
        """A readable id: rule and first output."""
        first = self.output_refs[0].path if self.output_refs else "?"
        return f"{self.rule}:{first}"


def normalize_path(path: str, workdir: Path) -> str:
    """Relative POSIX path when ``path`` lies in ``workdir``; else the absolute path."""
    p = Path(path)
    if not p.is_absolute():
        return Path(os.path.normpath(path)).as_posix()
    try:
        return p.resolve().relative_to(workdir.resolve()).as_posix()
    except ValueError:
        return str(p)


def _refs(named: dict[str, list[dict[str, str]]], workdir: Path) -> dict[str, tuple[FileRef, ...]]:
    return {name: tuple(FileRef(normalize_path(f["path"], workdir), f["sha256"]) for f in files)
            for name, files in named.items()}


def parse_record(data: dict[str, Any], workdir: Path, source: str) -> JobRecord:
    """A record dict (as written by :func:`layerpuzzle.provenance.build_record`) as a JobRecord."""
    return JobRecord(
        rule=str(data["rule"]),
        inputs=_refs(data.get("inputs") or {}, workdir),
        outputs=_refs(data["outputs"], workdir),
        params=data.get("params") or {},
        seed=data.get("seed"),
        git=data.get("git") or {},
        packages=data.get("packages") or {},
        host=str(data.get("host", "")),
        started_unix=float(data.get("started_unix", 0.0)),
        wall_time_s=float(data.get("wall_time_s", 0.0)),
        extra=data.get("extra") or {},
        sources=(source,),
    )


def is_record_file(path: Path) -> bool:
    return path.name.endswith(RECORD_SUFFIX) or path.name == DIR_RECORD


def record_files(workdir: Path, roots: Iterable[str] = ("results",), ignore: Iterable[str] = ()) -> list[Path]:
    """Every record file under ``roots`` (relative to ``workdir``) not matching ``ignore``, sorted."""
    found: set[Path] = set()
    ignore = tuple(ignore)
    for root in roots:
        base = workdir / root
        if base.is_dir():
            found.update(p for p in base.rglob("*") if p.is_file() and is_record_file(p)
                         and not is_temporary(p.relative_to(base))
                         and not any(fnmatch.fnmatchcase(p.relative_to(workdir).as_posix(), g) for g in ignore))
    return sorted(found)


def load_records(workdir: Path, roots: Iterable[str] = ("results",),
                 ignore: Iterable[str] = ()) -> tuple[list[JobRecord], list[tuple[str, str]]]:
    """(records, unreadable) — copies of one job's record merged; unreadable = [(file, error)].

    ``ignore``: patterns of record files to leave out (e.g. the audit's own scratch runs)."""
    merged: dict[str, JobRecord] = {}
    bad: list[tuple[str, str]] = []
    for path in record_files(workdir, roots, ignore):
        rel = path.relative_to(workdir).as_posix()
        try:
            data = json.loads(path.read_text())
            record = parse_record(data, workdir, rel)
        except (OSError, ValueError, KeyError, TypeError) as err:
            bad.append((rel, f"{type(err).__name__}: {err}"))
            continue
        key = json.dumps({k: v for k, v in data.items()}, sort_keys=True, default=str)
        if key in merged:
            old = merged[key]
            merged[key] = JobRecord(**{**old.__dict__, "sources": old.sources + (rel,)})
        else:
            merged[key] = record
    return list(merged.values()), bad
