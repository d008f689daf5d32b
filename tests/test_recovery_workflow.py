"""After Snakemake itself is killed, the README's way back works: `--unlock`, then the same command with the
profile (which sets rerun-incomplete)."""
import os
import signal
import subprocess
import time

import pytest
import yaml

from conftest import REPO
from workflow_utils import SNAKEMAKE, tiny_config

pytestmark = pytest.mark.slow


def _cmd(work, cfg, *args):
    return [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(work), "--configfile", str(cfg), *args]


def _env():
    env = dict(os.environ)
    env.setdefault("LAYERPUZZLE_DATA_MIRROR", str(REPO.parent / "shared" / "data"))
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def test_unlock_and_rerun_after_snakemake_is_killed(tmp_path, mirror):
    work = tmp_path / "work"
    work.mkdir()
    cfg = tiny_config(work)
    target = "results/random-llama/dense"
    proc = subprocess.Popen(_cmd(work, cfg, "--cores", "1", target), env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = work / "logs" / "random-llama" / "prepare_model.log"
    deadline = time.time() + 300
    while not log.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the job ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a lost login session or `kill -9` would
    proc.wait()
    assert not (work / target).exists()

    # 1. the working directory is still locked: the same command refuses to start and says why
    again = subprocess.run(_cmd(work, cfg, "--cores", "1", target), env=_env(), capture_output=True, text=True)
    assert again.returncode != 0
    assert "Directory cannot be locked" in again.stdout + again.stderr and "--unlock" in again.stdout + again.stderr
    # 2. --unlock (the README's first step), then the same command with the local profile (rerun-incomplete)
    subprocess.run(_cmd(work, cfg, "--unlock"), env=_env(), check=True, capture_output=True)
    done = subprocess.run(_cmd(work, cfg, "--profile", str(REPO / "profiles" / "local"), "--cores", "1", target),
                          env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (work / target / "config.json").is_file()


def test_readme_says_when_unlock_and_rerun_incomplete_are_needed():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### After a kill"):]
    section = section[: section.index("\n## ")]
    for needed in ("--unlock", "--rerun-incomplete", "IncompleteFilesException", "Directory cannot be locked",
                   "profiles/local", "profiles/slurm"):
        assert needed in section, needed
    for profile in ("local", "slurm"):
        assert yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())["rerun-incomplete"] is True
