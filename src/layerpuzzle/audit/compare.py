"""Comparing a re-executed output with the recorded one.

The rule is bit identity: sha256 of the file, or of a directory as
:func:`layerpuzzle.provenance.sha256_path` (provenance.json and
.snakemake_timestamp excluded; both hold times by design).  Outcome
``identical``.

Documented exceptions give the outcome ``equivalent`` (reported as such,
never as identical); every other difference is ``different``:

1. :data:`VOLATILE_JSON_KEYS` — lm-eval's raw result (``task-<task>.raw.json``
   of rule evaluate_checkpoint) holds, at top level, the start time and facts
   about the machine, which no re-execution repeats:

   * ``date``: ``time.time()`` at the start of ``lm_eval.evaluator.simple_evaluate``
     (lm_eval 0.4.13, evaluator.py: ``start_date = time.time()`` ... ``results["date"] = start_date``);
   * ``pretty_env_info``: torch's ``collect_env`` report of the host;
   * ``git_hash`` / ``upper_git_hash``: the git commit of the process' current directory.

   Such a file is compared as JSON without exactly these top-level keys.

2. Safetensors metadata order — a safetensors file is an 8-byte header length, a
   JSON header and the tensor bytes.  The Rust writer behind
   ``safetensors.torch.save_file`` keeps ``metadata`` in a hash map with a random
   per-process order, so the same job writes ``{"calib":..,"model":..}`` in one
   run and ``{"model":..,"calib":..}`` in the next (observed on the layer-scores
   job).  Two files are equivalent when their headers are equal as JSON objects
   (names, dtypes, shapes, offsets, metadata) and their tensor bytes are equal.

3. Run bookkeeping — a post-training checkpoint's ``training.json`` records the
   job's wall time (top-level ``seconds``) and, per phase, ``resumed_from`` (the
   step a killed job resumed from) and ``steps_run`` (the optimiser steps this
   process executed).  They say how the job ran, not what it computed: a job
   killed and resumed gives the same weights, losses and ``params_sha256`` as an
   uninterrupted re-execution, but other values here.  Such a file is compared as
   JSON without exactly these keys.

4. Pruning time — every checkpoint's ``pruning.json`` records the wall time of its
   pruning computation (``pruning_seconds`` and ``timing``, LaCo Table 4), and a
   removal order (``order.parquet``) the seconds it took (attribute ``seconds``);
   no re-execution repeats a wall time.  Such a ``pruning.json`` is compared as
   JSON without these two keys, an ``order.parquet`` as its rows and attributes
   without ``seconds``.
"""

from __future__ import annotations

import fnmatch
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..provenance import SKIP_IN_DIR_HASH, sha256_file, sha256_path

VOLATILE_JSON_KEYS: dict[str, tuple[str, ...]] = {
    "results/*/eval/*/task-*.raw.json": ("date", "pretty_env_info", "git_hash", "upper_git_hash"),
}
SAFETENSORS_RULE = "safetensors header as JSON (metadata key order ignored) + tensor bytes"
RUN_KEYS: tuple[str, ...] = ("seconds",)
RESUME_KEYS: tuple[str, ...] = ("resumed_from", "steps_run")
RESUME_RULE = "training.json without the run bookkeeping (seconds, phases[].resumed_from, steps_run)"
TIMING_KEYS: tuple[str, ...] = ("pruning_seconds", "timing")
TIMING_RULE = "pruning.json without the pruning time (pruning_seconds, timing); order.parquet without attrs.seconds"


def order_without_seconds(path: Path) -> tuple[Any, Any]:
    """(rows, attributes without ``seconds``) of a removal order's parquet file."""
    import pandas as pd

    df = pd.read_parquet(path)
    attrs = {k: v for k, v in df.attrs.items() if k != "seconds"}
    return df.to_dict(orient="list"), json.dumps(attrs, sort_keys=True, default=str)


def without_resume_bookkeeping(path: Path) -> Any:
    """training.json without :data:`RUN_KEYS` and with :data:`RESUME_KEYS` removed from every phase."""
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in RUN_KEYS}
    if isinstance(data, dict) and isinstance(data.get("phases"), list):
        data["phases"] = [{k: v for k, v in p.items() if k not in RESUME_KEYS} if isinstance(p, dict) else p
                          for p in data["phases"]]
    return data


@dataclass(frozen=True)
class OutputComparison:
    """One output of a re-executed job against its record."""

    path: str
    recorded_sha256: str
    reproduced_sha256: str | None  # None: the job did not produce it
    outcome: str  # identical | equivalent | different | absent
    rules: tuple[str, ...] = ()  # the documented rules that made it equivalent
    differing_files: tuple[str, ...] = ()  # inside a directory output: files not identical

    @property
    def equal(self) -> bool:
        return self.outcome in ("identical", "equivalent")


def volatile_keys(path: str) -> tuple[str, ...]:
    """The top-level JSON keys excluded when comparing ``path`` (empty: no such rule)."""
    for pattern, keys in VOLATILE_JSON_KEYS.items():
        if fnmatch.fnmatchcase(path, pattern):
            return keys
    return ()


def json_without(path: Path, keys: tuple[str, ...]) -> Any:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in keys} if isinstance(data, dict) else data


def safetensors_parts(path: Path) -> tuple[dict[str, Any], bytes]:
    """(header as a dict, tensor bytes) of a safetensors file."""
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def equivalence_rule(path: str, a: Path, b: Path) -> str | None:
    """The documented rule under which files ``a`` and ``b`` (shown as ``path``) are equivalent, or None."""
    keys = volatile_keys(path)
    try:
        if keys and json_without(a, keys) == json_without(b, keys):
            return f"json without {', '.join(keys)}"
        if path.endswith(".safetensors") and safetensors_parts(a) == safetensors_parts(b):
            return SAFETENSORS_RULE
        if path.endswith("/training.json") and without_resume_bookkeeping(a) == without_resume_bookkeeping(b):
            return RESUME_RULE
        if path.endswith("pruning.json") and json_without(a, TIMING_KEYS) == json_without(b, TIMING_KEYS):
            return TIMING_RULE
        if path.endswith("order.parquet") and order_without_seconds(a) == order_without_seconds(b):
            return TIMING_RULE
    except (ValueError, struct.error, OSError):
        return None
    return None


def _files(d: Path) -> dict[str, Path]:
    return {p.relative_to(d).as_posix(): p for p in d.rglob("*") if p.is_file() and p.name not in SKIP_IN_DIR_HASH}


def compare_output(path: str, recorded_sha256: str, original: Path, reproduced: Path) -> OutputComparison:
    """Compare ``reproduced`` with the recorded hash; ``original`` is the file on record (its
    sha256 must be the recorded one for a rule to apply)."""
    if not reproduced.exists():
        return OutputComparison(path, recorded_sha256, None, "absent")
    got = sha256_path(reproduced)
    if got == recorded_sha256:
        return OutputComparison(path, recorded_sha256, got, "identical")
    if not original.exists() or sha256_path(original) != recorded_sha256:
        return OutputComparison(path, recorded_sha256, got, "different")
    if original.is_file() and reproduced.is_file():
        rule = equivalence_rule(path, original, reproduced)
        return OutputComparison(path, recorded_sha256, got, "equivalent" if rule else "different",
                                (rule,) if rule else ())
    if original.is_dir() and reproduced.is_dir():
        fa, fb = _files(original), _files(reproduced)
        differing, rules = [], set()
        for rel in sorted(fa.keys() | fb.keys()):
            if rel in fa and rel in fb and sha256_file(fa[rel]) == sha256_file(fb[rel]):
                continue
            differing.append(rel)
            rule = equivalence_rule(f"{path}/{rel}", fa[rel], fb[rel]) if rel in fa and rel in fb else None
            rules.add(rule)
        outcome = "equivalent" if None not in rules else "different"
        return OutputComparison(path, recorded_sha256, got, outcome, tuple(sorted(r for r in rules if r)),
                                tuple(differing))
    return OutputComparison(path, recorded_sha256, got, "different")
