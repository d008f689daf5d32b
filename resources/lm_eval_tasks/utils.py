"""Helpers for the local lm-eval tasks (loaded by lm-eval through ``!function utils.<name>``).

This file is a template like the YAMLs: ``render_local_tasks`` copies it next to them and replaces
the mirror placeholder.  Every function reproduces the prompt of the matching lm-eval 0.4.13 task
(lm_eval/tasks/{hellaswag,winogrande,mmlu}) on the mirror's file formats (docs/evaluation.md).
"""

from __future__ import annotations

import functools
import json
import re

MIRROR = "@MIRROR@"
MMLU_DEV = MIRROR + "/mmlu/mmlu_dev.jsonl"
MMLU_LETTERS = "ABCD"
MMLU_SHOTS = 5


# --- HellaSwag ---------------------------------------------------------------------------------

def hellaswag_clean(text: str) -> str:
    """lm-eval's HellaSwag cleanup: strip, " [title]" -> ". ", drop "[...]" WikiHow tags, "  " -> " "."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_doc(doc: dict) -> dict:
    context = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
    return {
        "query": hellaswag_clean(doc["activity_label"] + ": " + context),
        "choices": [hellaswag_clean(e) for e in doc["endings"]],
        "gold": int(doc["label"]),
    }


def hellaswag_process_docs(dataset):
    return dataset.map(hellaswag_doc)


# --- WinoGrande (partial scoring, multiple inputs) ---------------------------------------------

def winogrande_doc_to_text(doc: dict) -> int:
    """The index of the correct context: lm-eval scores the shared continuation after each context."""
    return int(doc["gold"])


def winogrande_doc_to_choice(doc: dict) -> list[str]:
    return list(doc["context_options"])


def winogrande_doc_to_target(doc: dict) -> str:
    return doc["continuation"].strip()


# --- MMLU 5-shot -------------------------------------------------------------------------------

def mmlu_question(doc: dict) -> str:
    """lm-eval mmlu doc_to_text: question, lettered choices, 'Answer:'."""
    lines = [doc["question"].strip()]
    lines += [f"{letter}. {doc[f'choice{i}']}" for i, letter in enumerate(MMLU_LETTERS)]
    return "\n".join(lines) + "\nAnswer:"


@functools.lru_cache(maxsize=1)
def mmlu_dev_by_subject() -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    with open(MMLU_DEV, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows.setdefault(row["subject"], []).append(row)
    return rows


@functools.lru_cache(maxsize=None)
def mmlu_fewshot_prefix(subject: str) -> str:
    """Description plus the subject's first 5 dev rows, each answered and followed by a blank line."""
    shots = mmlu_dev_by_subject()[subject][:MMLU_SHOTS]
    if len(shots) < MMLU_SHOTS:
        raise ValueError(f"MMLU dev has {len(shots)} rows for {subject!r}, need {MMLU_SHOTS}")
    description = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    examples = "".join(mmlu_question(s) + " " + MMLU_LETTERS[int(s["answer"])] + "\n\n" for s in shots)
    return description + examples


def mmlu_doc_to_text(doc: dict) -> str:
    return mmlu_fewshot_prefix(doc["subject"]) + mmlu_question(doc)
