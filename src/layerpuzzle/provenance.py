"""Provenance records: what produced an artifact, from what, with which code.

A record holds the rule, every input and output with its sha256, the resolved
parameters, the seed, package versions, the git commit (and whether the tree
was dirty), the host and the wall time.  Scripts write one per job
(``*.prov.json`` beside the outputs, and ``provenance.json`` inside output
directories); the audit target walks them back to the inputs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import platform
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

PACKAGES = ("layerpuzzle", "torch", "transformers", "tokenizers", "datasets", "accelerate", "lm_eval",
            "snakemake", "numpy", "pandas", "pyarrow", "safetensors")
SKIP_IN_DIR_HASH = ("provenance.json", ".snakemake_timestamp")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_path(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a directory as the hash of its sorted (relative path, file hash) list."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise FileNotFoundError(f"cannot hash {str(path)!r}: no such file or directory")
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name not in SKIP_IN_DIR_HASH):
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    out = {}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = None
    return out


def git_state(cwd: str | os.PathLike | None = None) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
            return res.stdout.strip() if res.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def describe_files(paths: dict[str, list[str]]) -> dict[str, list[dict[str, str]]]:
    return {name: [{"path": str(p), "sha256": sha256_path(p)} for p in files] for name, files in paths.items()}


def build_record(*, code_dir: str | os.PathLike | None = None, rule: str, inputs: dict[str, list[str]], outputs: dict[str, list[str]],
                 params: dict[str, Any], seed: int | None, started: float, finished: float,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "rule": rule,
        "inputs": describe_files(inputs),
        "outputs": describe_files(outputs),
        "params": params,
        "seed": seed,
        "packages": package_versions(),
        "git": git_state(code_dir),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "started_unix": round(started, 3),
        "wall_time_s": round(finished - started, 3),
        "extra": extra or {},
    }


def now() -> float:
    return time.time()
