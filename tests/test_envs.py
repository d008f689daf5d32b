"""Per-rule software environments: every rule that runs code declares one, and the envs list
exactly the package's dependencies (pyproject.toml), so `--sdm conda` jobs can import it."""
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from workflow_utils import REPO

ENVS = {"ENV_MODEL": REPO / "envs" / "model.yaml", "ENV_TABLES": REPO / "envs" / "tables.yaml"}


def rule_blocks():
    """(file, rule name, text of the rule) for every rule in rules/*.smk."""
    for smk in sorted((REPO / "rules").glob("*.smk")):
        parts = re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M)
        for part in parts[1:]:
            yield smk.name, re.match(r"rule (\w+):", part).group(1), part


def test_every_rule_with_code_declares_a_conda_env():
    missing, envs = [], set()
    for name, rule, text in rule_blocks():
        if re.search(r"^\s+(script|shell|run):", text, flags=re.M):
            m = re.search(r"^\s+conda:\s*\n\s+(\w+)", text, flags=re.M)
            if not m:
                missing.append(f"{name}:{rule}")
            else:
                envs.add(m.group(1))
    assert not missing, f"rules without conda: {missing}"
    assert envs == set(ENVS)  # both environments are used, and nothing else


@pytest.mark.parametrize("env", sorted(ENVS))
def test_env_lists_exactly_the_package_dependencies(env):
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = yaml.safe_load(ENVS[env].read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == pyproject
    assert not any(str(p).startswith(("-e", ".")) for p in pip)  # no relative install: conda copies the file


def test_snakefile_puts_this_checkouts_src_first():
    text = (REPO / "Snakefile").read_text()
    assert 'Path(workflow.basedir) / "src"' in text and "PYTHONPATH" in text


def test_lint_has_no_missing_environment():
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(REPO), "--lint"],
                         capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert "Lints for" in out  # the linter ran
    assert "Specify a conda environment" not in out
    assert "Absolute path" not in out and "Path composition" not in out and "Environment variable" not in out
