"""The audit's two outputs: results/audit/report.md (for people) and audit.json (everything, for tools)."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..atomic import write_json, write_text
from .compare import RESUME_RULE, SAFETENSORS_RULE, TIMING_RULE, VOLATILE_JSON_KEYS
from .findings import KINDS, Finding
from .run import AuditResult, verdict


def _md_row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", r"\|").replace("\n", " ") for c in cells) + " |"


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [_md_row(header), "| " + " | ".join("---" for _ in header) + " |", *(_md_row(r) for r in rows)]


def _findings_block(findings: list[Finding]) -> list[str]:
    if not findings:
        return ["None.", ""]
    return [*_md_table(["kind", "artifact", "finding"], [[f.kind, f"`{f.artifact}`", f.message] for f in findings]), ""]


def render_markdown(result: AuditResult) -> str:
    """report.md: verdict, findings, re-execution, paper deltas, code versions, Snakemake state, manifest."""
    m = result.manifest
    failing = result.failing
    warnings = [f for f in result.findings if f not in failing]
    status = Counter(a.status for a in m.artifacts.values())
    out = [f"# Reproducibility audit: {'PASSED' if result.passed else 'FAILED'}", "",
           "```", verdict(result), "```", "",
           f"- working directory: `{result.workdir}`",
           f"- artifacts: {len(m.artifacts)} ({', '.join(f'{k} {v}' for k, v in sorted(status.items()))}); "
           f"jobs with a provenance record: {len(m.records)}; roots (inputs no job made): {len(m.roots)}",
           f"- re-executed jobs: {len(result.reexecutions)} "
           f"({sum(r.reproduced for r in result.reexecutions)} reproduced)",
           f"- paper deltas: {len(result.deltas)} cells ({sum(not d.within for d in result.deltas)} outside tolerance)",
           f"- fail on: {', '.join(result.settings.fail_on)}", ""]
    out += ["## Failing findings", "", *_findings_block(failing)]
    out += ["## Warnings", "", *_findings_block(warnings)]

    out += ["## Re-execution", "",
            "Each job re-run from its recorded inputs in a scratch directory through the workflow itself "
            "(`snakemake <outputs> --allowed-rules <rule> --forcerun <rule>`, same config); outputs compared with "
            "the recorded sha256. `identical`: same bytes. `equivalent`: same content under a documented rule "
            f"(lm-eval raw JSON without {', '.join(next(iter(VOLATILE_JSON_KEYS.values())))}; {SAFETENSORS_RULE}; "
            f"{RESUME_RULE}; {TIMING_RULE}). "
            "See layerpuzzle.audit.compare.", ""]
    rows = []
    for r in result.reexecutions:
        for o in r.outputs or []:
            detail = "; ".join([*o.rules, *(f"differs: {f}" for f in o.differing_files[:5])])
            rows.append([r.rule, f"`{o.path}`", o.outcome, detail, f"{r.recorded_seconds:.1f}", f"{r.seconds:.1f}"])
        if not r.outputs:
            rows.append([r.rule, f"`{r.job_id}`", f"failed (exit {r.returncode}), log `{r.log}`", "",
                         f"{r.recorded_seconds:.1f}", f"{r.seconds:.1f}"])
    out += _md_table(["rule", "output", "outcome", "rule applied / detail", "recorded s", "re-run s"], rows)
    out += ["", *(f"- {n}" for n in result.selection_notes), ""] if result.selection_notes else [""]

    out += ["## Paper deltas", "", "Every numeric cell of `results/tables/*_vs_paper.csv` with a paper value: "
            "delta = ours - paper against the band of its kind (config `audit.tolerance`).", ""]
    by_table: dict[str, list] = defaultdict(list)
    for d in result.deltas:
        by_table[d.table].append(d)
    out += _md_table(["table", "cells", "outside band", "max abs delta (kind)"],
                     [[f"`{t}`", len(ds), sum(not d.within for d in ds),
                       ", ".join(f"{max(abs(d.delta) for d in ds if d.kind == k):.2f} ({k})"
                                 for k in sorted({d.kind for d in ds}))] for t, ds in sorted(by_table.items())])
    outside = [d for d in result.deltas if not d.within]
    if outside:
        out += ["", "Outside the band:", ""]
        out += _md_table(["table", "row", "column", "ours", "paper", "delta", "band"],
                         [[f"`{d.table}`", d.row, d.column, f"{d.ours:.2f}", f"{d.paper:.2f}", f"{d.delta:+.2f}",
                           f"±{d.allowed:.2f}"] for d in outside])
    out += [""]

    out += ["## Code versions, seeds, hosts", ""]
    commits = Counter((str(j.git.get("commit")), bool(j.git.get("dirty"))) for j in m.records)
    out += _md_table(["git commit", "dirty", "jobs"], [[c, "yes" if d else "no", n] for (c, d), n in sorted(commits.items())])
    packages: dict[str, set] = defaultdict(set)
    for j in m.records:
        for name, version in j.packages.items():
            packages[name].add(str(version))
    out += ["", "Package versions (more than one = the jobs ran in different environments): "
            + ", ".join(f"{n} {'/'.join(sorted(v))}" for n, v in sorted(packages.items())), "",
            f"Hosts: {', '.join(sorted({j.host for j in m.records}))}", ""]
    out += _md_table(["rule", "jobs", "seeds"], [[rule, n, ", ".join(sorted({str(j.seed) for j in m.records if j.rule == rule}))]
                                                 for rule, n in sorted(Counter(j.rule for j in m.records).items())])
    out += [""]

    out += ["## Snakemake state", ""]
    if result.state is None:
        out += ["Not captured.", ""]
    else:
        s = result.state
        out += [f"- `snakemake --summary`: {len(s.pending)} file(s) with an update planned; `{s.files['summary']}`"]
        out += [f"- `snakemake --list-changes {k}`: {len(v)} file(s); `{s.files['list-changes-' + k]}`"
                for k, v in s.changes.items()]
        out += [""]

    out += ["## Manifest", "", "Every artifact under results/ (audit outputs and ignored patterns excepted). "
            "`chain`: ok when the artifact and every upstream artifact are as recorded and every recorded input "
            "is the version on record. Full sha256 and lineage (ancestors, roots, jobs, seeds, commits) in audit.json.", ""]
    rows = []
    for a in sorted(m.artifacts.values(), key=lambda a: a.path):
        lin = m.lineage(a.path)
        rows.append([f"`{a.path}`", a.kind, (a.sha256 or "")[:16], a.rule or "", a.status,
                     "ok" if a.chain_ok else "BROKEN", len(lin.ancestors), len(lin.roots)])
    out += _md_table(["artifact", "kind", "sha256 (16)", "rule", "status", "chain", "ancestors", "roots"], rows)
    out += ["", "## Finding kinds", ""]
    out += [f"- `{k}`: {v}" + (" (fails)" if k in result.settings.fail_on else "") for k, v in KINDS.items()]
    return "\n".join(out) + "\n"


def to_json(result: AuditResult) -> dict[str, Any]:
    """Everything the audit saw, as plain data."""
    m = result.manifest
    return {
        "passed": result.passed,
        "verdict": verdict(result),
        "workdir": result.workdir,
        "settings": dataclasses.asdict(result.settings),
        "failing": [f.to_dict() for f in result.failing],
        "findings": [f.to_dict() for f in result.findings],
        "artifacts": [{**dataclasses.asdict(a), "lineage": dataclasses.asdict(m.lineage(a.path))}
                      for a in sorted(m.artifacts.values(), key=lambda a: a.path)],
        "jobs": [{"job_id": j.job_id, **{k: v for k, v in dataclasses.asdict(j).items()}} for j in m.records],
        "roots": m.roots,
        "reexecutions": [{**dataclasses.asdict(r), "reproduced": r.reproduced} for r in result.reexecutions],
        "selection_notes": result.selection_notes,
        "paper_deltas": [dataclasses.asdict(d) for d in result.deltas],
        "snakemake": None if result.state is None else dataclasses.asdict(result.state),
    }


def write_report(result: AuditResult, markdown_path: str | Path, json_path: str | Path) -> None:
    write_text(markdown_path, render_markdown(result))
    write_json(json_path, to_json(result))
