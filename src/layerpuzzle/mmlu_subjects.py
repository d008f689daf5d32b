"""MMLU's 57 subjects (Hendrycks et al., 2021) and the selection of an evaluation's questions by subject.

The names are those of the data's ``subject`` field and of lm-eval's per-subject tasks ``mmlu_<subject>``
(docs/evaluation.md, "MMLU by subject").
"""

from __future__ import annotations

from typing import Iterable, Sequence

MMLU_SUBJECTS: tuple[str, ...] = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine", "college_physics",
    "computer_security", "conceptual_physics", "econometrics", "electrical_engineering", "elementary_mathematics",
    "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "human_aging", "human_sexuality", "international_law", "jurisprudence", "logical_fallacies", "machine_learning",
    "management", "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)


def unknown_subjects(subjects: Iterable[str]) -> list[str]:
    """The names of ``subjects`` that are not MMLU subjects, in order."""
    return [s for s in subjects if s not in MMLU_SUBJECTS]


def subject_doc_indices(doc_subjects: Sequence[str], subjects: Iterable[str], limit: int | None = None) -> list[int]:
    """Indices of the documents whose subject is one of ``subjects``, in document order; with ``limit``, the
    first ``limit`` of each subject (lm-eval's ``limit`` on the hub's per-subject tasks)."""
    wanted = set(subjects)
    unknown = unknown_subjects(wanted)
    if unknown:
        raise ValueError(f"unknown MMLU subject(s) {sorted(unknown)}; allowed: {', '.join(MMLU_SUBJECTS)}")
    taken: dict[str, int] = {}
    out = []
    for i, s in enumerate(doc_subjects):
        if s in wanted and (limit is None or taken.get(s, 0) < limit):
            taken[s] = taken.get(s, 0) + 1
            out.append(i)
    return out
