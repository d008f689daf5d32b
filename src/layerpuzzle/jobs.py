"""What every workflow script does around its science: logging, threads, seeds, provenance.

Scripts under ``workflow/scripts`` are thin::

    from layerpuzzle.jobs import run_job
    def main(job): ...            # reads job.input / job.params, writes job.output
    run_job(snakemake, main)

``run_job`` sends logging, stdout and stderr (progress bars included) to the
rule's ``log:``, sets torch's thread count to the rule's ``threads``, seeds
Python/NumPy/torch from ``params.seed`` when present, makes every ``load_model``
follow the ``trust_remote_code`` of the job's model entry (off unless set), and on
success writes the provenance record to ``output.prov`` (when the rule declares it) and as
``provenance.json`` inside every directory output.  Before ``main`` it removes
what a killed earlier run of the job left beside its outputs (temporary
``.<name>.tmp-XXXXXXXX`` siblings, see :mod:`layerpuzzle.atomic`).  When
``main`` (or the provenance step) raises, the exception and its traceback are
written to the log before it propagates, so the rule's log says why it failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any, Callable

from .atomic import remove_stale, write_json
from .provenance import build_record, now

log = logging.getLogger("layerpuzzle")


def _plain(obj: Any) -> Any:
    """Snakemake Namedlists / params to JSON-able plain data."""
    if hasattr(obj, "items") and callable(obj.items):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _files(named) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in named.items():
        out[name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    positional = [str(v) for v in named]
    covered = {p for ps in out.values() for p in ps}
    rest = [p for p in positional if p not in covered]
    if rest:
        out["_"] = rest
    return out


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _declared_paths(named) -> list[str]:
    return [p for paths in _files(named).values() for p in paths]


def job_model_entry(smk) -> dict[str, Any]:
    """The ``models:`` entry of the job's model (wildcard ``model``, else ``params.model``); {} when none."""
    wildcards = getattr(smk, "wildcards", None)
    name = getattr(wildcards, "model", None) if wildcards is not None else None
    if name is None:
        params = getattr(smk, "params", None)
        name = params.get("model") if hasattr(params, "get") else None
    models = (getattr(smk, "config", None) or {}).get("models") or {}
    entry = models.get(name) if isinstance(name, str) else None
    return entry if isinstance(entry, dict) else {}


def run_job(smk, main: Callable[[Any], dict[str, Any] | None]) -> None:
    """Run ``main(smk)`` inside the job conventions above."""
    import torch

    from .models.sources import set_trust_remote_code

    trust_remote_code = bool(job_model_entry(smk).get("trust_remote_code", False))
    set_trust_remote_code(trust_remote_code)  # every load_model of this job follows the model entry

    log_path = Path(smk.log[0]) if len(smk.log) else None
    if log_path:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_path, "w", buffering=1) if log_path else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            try:
                _run(smk, main, torch, trust_remote_code)
            except BaseException as exc:
                if not (isinstance(exc, SystemExit) and exc.code in (None, 0)):
                    log.error("rule %s failed: %s: %s", getattr(smk, "rule", "?"), type(exc).__name__, exc,
                              exc_info=True)
                raise
    finally:
        handler.flush()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        if log_path:
            stream.close()


def _run(smk, main: Callable[[Any], dict[str, Any] | None], torch, trust_remote_code: bool = False) -> None:
    torch.set_num_threads(max(1, int(getattr(smk, "threads", 1) or 1)))
    params = _plain(smk.params)
    seed = params.get("seed") if isinstance(params, dict) else None
    if seed is not None:
        seed_everything(int(seed))
    for p in _declared_paths(smk.output):
        remove_stale(p)
    started = now()
    log.info("rule %s: inputs %s", smk.rule, list(smk.input))
    extra = main(smk) or {}
    if trust_remote_code:
        extra = {**extra, "trust_remote_code": True}
    finished = now()
    outputs = _files(smk.output)
    prov_paths = outputs.pop("prov", [])
    code_dir = getattr(smk, "scriptdir", None) or Path(__file__).parent
    record = build_record(code_dir=code_dir, rule=smk.rule, inputs=_files(smk.input), outputs=outputs,
                          params=params, seed=seed, started=started, finished=finished,
                          extra={"threads": int(getattr(smk, "threads", 1) or 1), **_plain(extra)})
    for p in prov_paths:
        write_json(p, record)
    for paths in outputs.values():
        for p in paths:
            if Path(p).is_dir():
                write_json(Path(p) / "provenance.json", record)
    log.info("done in %.1f s", finished - started)
    if extra:
        log.info("extra: %s", json.dumps(_plain(extra), default=str)[:2000])
