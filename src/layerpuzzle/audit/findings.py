"""Findings: what the audit reports, one per problem, each naming the artifact concerned.

A finding's ``kind`` says what went wrong; the config's ``audit.fail_on`` says
which kinds fail the audit (the others are warnings).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

# kind -> what it means (printed in the report's legend)
KINDS: dict[str, str] = {
    "tampered": "the artifact's bytes differ from the sha256 its producing job recorded",
    "stale_input": "a job recorded an input sha256 that differs from that input's own record",
    "external_input_changed": "an input outside the working directory changed since the job read it",
    "no_record": "an artifact under results/ that no provenance record produced",
    "missing": "an artifact that a record or the all_tables target expects is not on disk",
    "not_reproduced": "a re-executed job gave other bytes than recorded (or failed)",
    "paper_delta": "ours - paper is outside the configured tolerance band",
    "bad_record": "a provenance record that cannot be read",
    "conflicting_records": "two different records claim the same output",
    "input_missing": "a recorded input under the working directory is gone (its chain ends there)",
    "external_input_missing": "a recorded input outside the working directory cannot be found",
    "dirty_tree": "jobs ran from a git tree with uncommitted changes (code version not exact)",
    "mixed_code_versions": "the artifacts were produced by more than one git commit",
    "pending": "Snakemake would re-run jobs (outputs outdated against code, params or inputs)",
    "snakemake_error": "snakemake --summary or --list-changes failed (see the captured file)",
}


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, the artifact (or job) it concerns, and a sentence a user can act on."""

    kind: str
    artifact: str
    message: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}; known: {', '.join(KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failing(findings: Iterable[Finding], fail_on: Iterable[str]) -> list[Finding]:
    """The findings whose kind is in ``fail_on``."""
    kinds = set(fail_on)
    return [f for f in findings if f.kind in kinds]
