"""The audit's settings (config section ``audit:``, schema in config/schema.yaml) as dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

DEFAULT_IGNORE = ("results/audit/*", "results/_downloads/*")
DEFAULT_FAIL_ON = ("tampered", "stale_input", "external_input_changed", "no_record", "missing",
                   "not_reproduced", "paper_delta", "bad_record", "conflicting_records")


@dataclass(frozen=True)
class JobSelector:
    """Re-execute ``n`` jobs (of ``rule``, if set) that have an output matching ``artifact``."""

    artifact: str
    n: int = 1
    rule: str | None = None


@dataclass(frozen=True)
class Tolerance:
    """Bands of |ours - paper| per column kind (see :mod:`.paper_deltas`)."""

    accuracy_points: float = 2.0
    ppl_relative: float = 0.1
    sparsity_points: float = 0.5
    count: float = 0.0
    params_relative: float = 0.01
    other_relative: float = 0.05


@dataclass(frozen=True)
class ReexecuteSettings:
    enabled: bool = True
    jobs: tuple[JobSelector, ...] = (
        JobSelector("results/*/calib/*.safetensors"),
        JobSelector("results/*/scores/*/bi.parquet"),
        JobSelector("results/*/pruned/*/sp*/*"),
    )
    pick: str = "fastest"
    seed: int = 0
    timeout_s: int = 3600
    keep_scratch: bool = False


@dataclass(frozen=True)
class AuditSettings:
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    reexecute: ReexecuteSettings = field(default_factory=ReexecuteSettings)
    tolerance: Tolerance = field(default_factory=Tolerance)
    fail_on: tuple[str, ...] = DEFAULT_FAIL_ON

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> "AuditSettings":
        """From the validated config's ``audit`` section (defaults for absent keys)."""
        section = dict(section or {})
        rex = dict(section.get("reexecute") or {})
        if "jobs" in rex:
            rex["jobs"] = tuple(JobSelector(artifact=j["artifact"], n=int(j.get("n", 1)), rule=j.get("rule"))
                                for j in rex["jobs"])
        return cls(
            ignore=tuple(section.get("ignore", DEFAULT_IGNORE)),
            reexecute=ReexecuteSettings(**rex),
            tolerance=Tolerance(**(section.get("tolerance") or {})),
            fail_on=tuple(section.get("fail_on", DEFAULT_FAIL_ON)),
        )
