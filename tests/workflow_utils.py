"""Helpers to run the real workflow on a tiny config in a scratch directory."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def method_keys() -> list[str]:
    return sorted(p.name[: -len(".schema.yaml")] for p in (REPO / "config" / "methods").glob("*.schema.yaml"))


def tiny_config(tmp: Path, enable: tuple[str, ...] = (), **overrides) -> Path:
    """tests/configs/random_llama.yaml with every method disabled except ``enable``."""
    cfg = yaml.safe_load((REPO / "tests" / "configs" / "random_llama.yaml").read_text())
    cfg["methods"] = {k: {"enabled": k in enable} for k in method_keys()}
    for key, value in overrides.items():
        cfg[key] = value
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake(workdir: Path, configfile: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.setdefault("LAYERPUZZLE_DATA_MIRROR", str(REPO.parent / "shared" / "data"))
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(configfile), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3000)
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-6000:]}")
    return res


def scheduled_jobs(dry_run_output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run ({} when nothing is to be done)."""
    counts: dict[str, int] = {}
    lines = dry_run_output.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Job stats:"):
            for row in lines[i + 3:]:
                m = re.match(r"^(\S+)\s+(\d+)\s*$", row.strip())
                if not m or m.group(1) == "total":
                    break
                counts[m.group(1)] = int(m.group(2))
            break
    return counts
