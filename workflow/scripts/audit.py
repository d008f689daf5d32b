"""The reproducibility audit (rule audit): manifest, re-execution, paper deltas, Snakemake's state.

Fails (non-zero exit) with a message naming every artifact that is altered, missing,
off its provenance chain or not reproduced; report.md / audit.json are written first.
"""
import copy
import logging
from pathlib import Path

import yaml

from layerpuzzle.atomic import write_json, write_text
from layerpuzzle.audit import AuditFailed, AuditSettings, run_audit, verdict, write_report
from layerpuzzle.jobs import run_job

log = logging.getLogger("layerpuzzle.audit")


def effective_config(config, mirror):
    """The run's config as plain data (key order kept: Snakemake compares params by their repr),
    with the data mirror this run resolved."""
    cfg = copy.deepcopy(dict(config))
    if mirror:
        cfg.setdefault("data", {})["mirror"] = mirror
    return cfg


def main(job):
    out_dir = Path(job.log.report).parent
    configfile = out_dir / "config.yaml"
    write_text(configfile, yaml.safe_dump(effective_config(job.config, job.params.mirror), sort_keys=False))
    result = run_audit(".", AuditSettings.from_config(job.config.get("audit")), out_dir=out_dir,
                       snakefile=job.params.snakefile, configfile=str(configfile),
                       expected=list(job.params.expected), cores=job.threads)
    write_report(result, job.log.report, job.log.json)
    message = verdict(result)
    log.info("%s", message)
    if not result.passed:
        raise AuditFailed(f"{message}\nreport: {job.log.report}")
    write_json(job.output.verdict, {"passed": True, "verdict": message, "report": job.log.report})
    return {"artifacts": len(result.manifest.artifacts), "reexecuted": len(result.reexecutions),
            "paper_deltas": len(result.deltas), "warnings": len(result.findings)}


run_job(snakemake, main)  # noqa: F821
