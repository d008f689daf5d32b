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


def checkpoint_slug(configfile: Path, key: str, variant: dict | None = None, model: str = "random-llama") -> str:
    """The path component the workflow gives a variant of method ``key`` under the config in ``configfile``
    (method-level settings that differ from the schema default included)."""
    from layerpuzzle.config import config_checkpoint_slug

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    _merge(config, yaml.safe_load(Path(configfile).read_text()))
    return config_checkpoint_slug(config, REPO / "config" / "schema.yaml", key, variant or {}, model)


def _merge(base: dict, new: dict) -> None:
    """Snakemake's --configfile merge: nested mappings key by key, anything else replaced."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


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
