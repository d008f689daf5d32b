"""MKA's calibration prompts (docs/methods/mka.md step 1; MKA ``pipeline.py:main``).

The MMLU test questions of the first ``num_tasks`` subjects in alphabetical
order; from each subject ``num_samples`` row indices drawn with Python's
``random.sample`` from one ``random.Random(seed)`` stream, subject after subject
(the code seeds the global stream with 1; CoMe Table 5 says seed 10).  A prompt
is the zero-shot ``format_example(include_answer=False)``: question, lettered
choices and ``"\\nAnswer:"`` (no dev examples).

Offline, the mirror holds the first 20 test questions per subject, so indices
are drawn from 20 rows instead of the full subject (a smaller pool).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...data.text_sources import format_mmlu_question, mirror_file


@dataclass(frozen=True)
class Prompt:
    subject: str
    index: int
    text: str


def mmlu_test_rows(mirror: Path | None) -> list[dict[str, Any]]:
    """MMLU test rows with their ``subject`` (mirror jsonl, or ``cais/mmlu`` all/test from the hub)."""
    if mirror is not None:
        with open(mirror_file(mirror, "mmlu/test"), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    import datasets

    return [dict(r) for r in datasets.load_dataset("cais/mmlu", "all", split="test")]


def select_prompts(rows: list[dict[str, Any]], num_tasks: int, num_samples: int, seed: int) -> list[Prompt]:
    """The calibration prompts, in subject order then draw order."""
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_subject.setdefault(r["subject"], []).append(r)
    rng = random.Random(seed)
    out = []
    for subject in sorted(by_subject)[:num_tasks]:
        pool = by_subject[subject]
        for i in rng.sample(range(len(pool)), min(num_samples, len(pool))):
            out.append(Prompt(subject, i, format_mmlu_question(pool[i], include_answer=False)))
    return out
