"""Every mirror file a local task template reads is declared (and so hashed in provenance)."""
import re
from pathlib import Path

from layerpuzzle.evaluation.local_tasks import DEFAULT_TEMPLATES, TASK_MIRROR_FILES, benchmark_mirror_files


def test_declared_files_cover_the_templates(mirror):
    referenced = set()
    for f in DEFAULT_TEMPLATES.glob("*"):
        referenced |= set(re.findall(r"@MIRROR@/([^\"'\s]+)", f.read_text()))
    declared = {p for files in TASK_MIRROR_FILES.values() for p in files}
    assert referenced and referenced <= declared
    paths = benchmark_mirror_files(mirror, ["piqa", "mmlu"])
    assert paths == [str(mirror / p) for p in ("piqa/valid.jsonl", "piqa/valid-labels.lst",
                                               "mmlu/mmlu_test_first20_per_subject.jsonl", "mmlu/mmlu_dev.jsonl")]
    assert all(Path(p).is_file() for p in benchmark_mirror_files(mirror, list(TASK_MIRROR_FILES)))
