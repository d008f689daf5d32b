"""The repository explains itself: every relative link in README.md and docs/ resolves, and no
text cites the project-internal spec files a user's clone does not have."""
import re
import subprocess

from workflow_utils import REPO

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_relative_links_resolve():
    broken = []
    for md in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for target in LINK.findall(md.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(REPO)} -> {target}")
    assert broken == []


def test_every_method_has_a_page():
    methods = sorted(p.name[: -len(".schema.yaml")] for p in (REPO / "config" / "methods").glob("*.schema.yaml"))
    index = (REPO / "docs" / "README.md").read_text()
    assert [m for m in methods if not (REPO / "docs" / "methods" / f"{m}.md").exists()] == []
    assert [m for m in methods if f"methods/{m}.md" in index] == methods


def test_no_citation_of_files_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    pattern = re.compile(r"(?<![\w/])(come|baselines|seeds_laco_mka|environment)\.md|shared/spec")
    hits = [f"{f}:{i}" for f in files if f.endswith((".py", ".smk", ".yaml", ".md", ".rst", ".sh")) or f == "Snakefile"
            if (REPO / f).is_file() and f != "tests/test_docs.py"
            for i, line in enumerate((REPO / f).read_text(errors="replace").splitlines(), 1) if pattern.search(line)]
    assert hits == []
