"""Local lm-eval tasks over the offline data mirror (layout in docs/calibration.md and docs/evaluation.md).

The task YAMLs and their ``utils.py`` live in ``resources/lm_eval_tasks/`` as templates with two
placeholders: ``@MIRROR@`` (the mirror directory) and ``@TASKDIR@`` (the directory they are rendered
into).  ``render_local_tasks`` writes the rendered files (plus PIQA's merged, labelled jsonl) into a
scratch directory; ``TaskManager(include_path=that_dir, include_defaults=False)`` then indexes only
them, instantly.  Nothing is ever written into the repository or the mirror.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Iterator

MIRROR_PLACEHOLDER = "@MIRROR@"
TASKDIR_PLACEHOLDER = "@TASKDIR@"
PIQA_MERGED = "piqa_valid.jsonl"

# resources/ sits at the repository root, next to src/ (editable install).
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[3] / "resources" / "lm_eval_tasks"


def _check_path(path: Path) -> str:
    text = str(path)
    if any(c in text for c in '"\\\n'):
        raise ValueError(f"path {text!r} contains a quote, backslash or newline; it cannot be put into a task YAML")
    return text


def merge_piqa(mirror: Path, out: Path) -> int:
    """Write PIQA valid.jsonl rows with ``label`` from the line-aligned valid-labels.lst; returns the row count."""
    rows = [json.loads(line) for line in (mirror / "piqa" / "valid.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = [int(x) for x in (mirror / "piqa" / "valid-labels.lst").read_text(encoding="utf-8").split()]
    if len(rows) != len(labels):
        raise ValueError(f"PIQA mirror: {len(rows)} rows in valid.jsonl but {len(labels)} labels in valid-labels.lst")
    with open(out, "w", encoding="utf-8") as f:
        for row, label in zip(rows, labels):
            f.write(json.dumps({**row, "label": label}) + "\n")
    return len(rows)


def render_local_tasks(mirror: Path, dest: Path, templates: Path | None = None) -> Path:
    """Render every template of ``templates`` (default ``resources/lm_eval_tasks``) into ``dest``."""
    mirror, dest = Path(mirror).resolve(), Path(dest).resolve()
    templates = Path(templates) if templates is not None else DEFAULT_TEMPLATES
    if not mirror.is_dir():
        raise FileNotFoundError(f"data mirror directory {str(mirror)!r} does not exist")
    if not templates.is_dir():
        raise FileNotFoundError(f"lm-eval task templates not found at {str(templates)!r}")
    mirror_s, dest_s = _check_path(mirror), _check_path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(templates.iterdir()):
        if src.suffix in (".yaml", ".py"):
            text = src.read_text(encoding="utf-8")
            text = text.replace(MIRROR_PLACEHOLDER, mirror_s).replace(TASKDIR_PLACEHOLDER, dest_s)
            (dest / src.name).write_text(text, encoding="utf-8")
    merge_piqa(mirror, dest / PIQA_MERGED)
    return dest


@contextlib.contextmanager
def local_task_manager(mirror: Path, templates: Path | None = None) -> Iterator[tuple["object", Path]]:
    """Yield ``(TaskManager, rendered_dir)`` over the rendered local tasks only; the directory is removed after."""
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory(prefix="layerpuzzle-lm-eval-tasks-") as tmp:
        rendered = render_local_tasks(mirror, Path(tmp), templates)
        yield TaskManager(include_path=str(rendered), include_defaults=False), rendered


# The mirror files each local task reads (relative to the mirror), so the workflow
# can declare them as inputs and record their sha256 in the provenance.
TASK_MIRROR_FILES = {
    "arc_challenge": ["arc_challenge/arc_challenge_test.llmfoundry.jsonl"],
    "arc_easy": ["arc_easy/arc_easy_test.llmfoundry.jsonl"],
    "hellaswag": ["hellaswag/hellaswag_val_sample1000.jsonl"],
    "mmlu": ["mmlu/mmlu_test_first20_per_subject.jsonl", "mmlu/mmlu_dev.jsonl"],
    "openbookqa": ["openbookqa/openbookqa_test.llmfoundry.jsonl"],
    "piqa": ["piqa/valid.jsonl", "piqa/valid-labels.lst"],
    "winogrande": ["winogrande/winogrande_dev.llmfoundry.jsonl"],
    # the extra benchmarks (harness.EXTRA_TASKS)
    "boolq": ["boolq/superglue_boolq_val.jsonl"],
    "race_high": ["race/RACE_test_high.per_article.jsonl"],
    "race_middle": ["race/RACE_test_middle.per_article.jsonl"],
    "commonsense_qa": ["commonsense_qa/validation.hf_tau.jsonl"],
    "wsc273": ["wsc273/WSCollection.xml"],
    "wsc": ["wsc/superglue_wsc_val.jsonl"],
}


def benchmark_mirror_files(mirror: Path, tasks) -> list[str]:
    """Absolute paths of the mirror files the given local tasks (any list of task keys) read."""
    unknown = [t for t in tasks if t not in TASK_MIRROR_FILES]
    if unknown:
        raise KeyError(f"no mirror files declared for task(s) {unknown}; known: {', '.join(TASK_MIRROR_FILES)}")
    return [str(Path(mirror) / rel) for t in tasks for rel in TASK_MIRROR_FILES[t]]
