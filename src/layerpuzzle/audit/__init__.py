"""The reproducibility audit (rule ``audit``, rules/audit.smk).

* :mod:`.records`   - provenance records read back (one per job);
* :mod:`.manifest`  - every artifact, its sha256 and provenance chain, the integrity checks;
* :mod:`.reexecute` - sampled jobs re-run in a scratch directory through the workflow;
* :mod:`.compare`   - output comparison (bit identity; two documented exceptions);
* :mod:`.paper_deltas` - reproduced table cells against the paper, with tolerance bands;
* :mod:`.snakemake_state` - ``snakemake --summary`` / ``--list-changes`` captured;
* :mod:`.run`, :mod:`.report` - the verdict, report.md and audit.json.
"""

from .findings import KINDS, Finding
from .manifest import Artifact, Lineage, Manifest, build_manifest
from .paper_deltas import PaperDelta, paper_deltas
from .reexecute import Reexecution, reexecute, select_jobs
from .report import render_markdown, to_json, write_report
from .run import AuditFailed, AuditResult, run_audit, verdict
from .settings import AuditSettings, JobSelector, Tolerance

__all__ = [
    "KINDS", "Finding", "Artifact", "Lineage", "Manifest", "build_manifest", "PaperDelta", "paper_deltas",
    "Reexecution", "reexecute", "select_jobs", "render_markdown", "to_json", "write_report", "AuditFailed",
    "AuditResult", "run_audit", "verdict", "AuditSettings", "JobSelector", "Tolerance",
]
