"""The package's layers: lower layers never import higher ones (the brief's style rule, issue 'one place per method')."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "layerpuzzle"


def imported_modules(path: Path) -> set[str]:
    """Absolute dotted names of every layerpuzzle module ``path`` imports (top level and inside functions)."""
    package = ["layerpuzzle", *path.relative_to(SRC).with_suffix("").parts[:-1]]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                out.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module and node.module.startswith("layerpuzzle"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("layerpuzzle"))
    return out


def test_methods_and_distill_import_no_table_or_figure_builder():
    offenders = {}
    for layer in ("methods", "distill"):
        for path in sorted((SRC / layer).rglob("*.py")):
            bad = sorted(m for m in imported_modules(path)
                         if m.startswith(("layerpuzzle.tables", "layerpuzzle.figures")))
            if bad:
                offenders[str(path.relative_to(SRC))] = bad
    assert offenders == {}


def test_no_private_names_imported_across_modules():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and any(a.name.startswith("_") and not a.name.startswith("__") for a in node.names):
                offenders.append(f"{path.relative_to(SRC)}: {[a.name for a in node.names]}")
    assert offenders == []


def test_the_resolver_sees_relative_imports():
    """A positive control: the resolver finds a known import (tables.posttrain imports tables.results)."""
    assert "layerpuzzle.tables.results" in imported_modules(SRC / "tables" / "posttrain.py")
    assert "layerpuzzle.figures.loss_curve" in imported_modules(SRC / "posttrain_jobs.py")
