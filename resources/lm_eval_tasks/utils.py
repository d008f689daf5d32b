"""Helpers for the local lm-eval tasks (loaded by lm-eval through ``!function utils.<name>``).

This file is a template like the YAMLs: ``render_local_tasks`` copies it next to them and replaces
the mirror placeholder.  Every function reproduces the prompt of the matching lm-eval 0.4.13 task
(lm_eval/tasks/{hellaswag,winogrande,mmlu}) on the mirror's file formats (docs/evaluation.md).
For RACE, SuperGLUE WSC and WSC273 the prompt functions are lm-eval's own, imported from
lm_eval.tasks; the functions here only turn the mirror's original files into the hub datasets' rows
(docs/evaluation.md).
"""

from __future__ import annotations

import functools
import json
import re
import xml.etree.ElementTree as ET

from lm_eval.tasks.race.preprocess_race import doc_to_choice as race_doc_to_choice  # noqa: F401
from lm_eval.tasks.race.preprocess_race import doc_to_target as race_doc_to_target  # noqa: F401
from lm_eval.tasks.race.preprocess_race import doc_to_text as race_doc_to_text  # noqa: F401
from lm_eval.tasks.super_glue.wsc.preprocess_wsc import default_doc_to_text as wsc_doc_to_text  # noqa: F401
from lm_eval.tasks.wsc273.utils import process_doc as wsc273_process_doc  # noqa: F401

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


# --- SuperGLUE BoolQ / WSC: the original val.jsonl -> the hub's super_glue rows -----------------

def superglue_label(label) -> int:
    """The super_glue builder's label: the JSON boolean -> ClassLabel(["False", "True"]) index."""
    if not isinstance(label, bool):
        raise ValueError(f"expected a JSON boolean SuperGLUE label, got {label!r}")
    return int(label)


def _int_label(dataset):
    # datasets keeps a column's bool type through map(), so the label is cast explicitly
    import datasets

    return dataset.cast_column("label", datasets.Value("int64"))


def superglue_boolq_process_docs(dataset):
    for label in dataset["label"]:
        superglue_label(label)
    return _int_label(dataset)


def superglue_wsc_fixed_doc(doc: dict) -> dict:
    """One row of the hub's super_glue ``wsc.fixed``: text, span1/2_index, span1/2_text, idx, label.

    The ``wsc.fixed`` builder repairs span texts that are not substrings of the text: unless the span
    is one of two unfixable Kamenev/Zinoviev spans, its first letter takes the case of the text's word
    at the span index, trailing "." are dropped and newlines become spaces (a "theyscold" span also
    sets span2_index to 10; the builder's text replacement there has no effect).
    """
    row = {"text": doc["text"], **{k: doc["target"][k] for k in ("span1_index", "span2_index", "span1_text", "span2_text")}}
    for k in ("span1", "span2"):
        span, index = row[k + "_text"], row[k + "_index"]
        if span in row["text"] or span in ("Kamenev and Zinoviev", "Kamenev, Zinoviev, and Stalin"):
            continue
        if "theyscold" in span:
            row["span2_index"] = 10
        word = row["text"].split()[index]
        span = (span[0].lower() if word[0].islower() else span[0].upper()) + span[1:]
        span = span.rstrip(".").replace("\n", " ")
        if span not in row["text"]:
            raise ValueError(f"WSC idx {doc['idx']}: span {span!r} is not in the text")
        row[k + "_text"] = span
    return {**row, "idx": doc["idx"], "label": superglue_label(doc["label"])}


def superglue_wsc_fixed_process_docs(dataset):
    return _int_label(dataset.map(superglue_wsc_fixed_doc, remove_columns=["target"]))


# --- RACE: one original per-article file -> the hub's EleutherAI/race document ------------------

def race_doc(doc: dict) -> dict:
    """``article`` and ``problems`` (the questions in file order, as a Python-literal list of
    {question, answer, options}: lm-eval parses it with ast.literal_eval)."""
    n = len(doc["questions"])
    if not (len(doc["answers"]) == len(doc["options"]) == n > 0):
        raise ValueError(f"RACE {doc.get('id')}: {n} questions, {len(doc['answers'])} answers, {len(doc['options'])} option lists")
    problems = [{"answer": a, "options": list(o), "question": q}
                for q, a, o in zip(doc["questions"], doc["answers"], doc["options"])]
    return {"article": doc["article"], "problems": repr(problems)}


def race_process_docs(dataset):
    return dataset.map(race_doc, remove_columns=dataset.column_names)


# --- WSC273: WSCollection.xml -> the hub's winograd_wsc rows -------------------------------------

WSC273_SIZE = 273


def _squash(text) -> str:
    return " ".join((text or "").split())


def wsc273_schema(schema) -> dict:
    """One <schema> as the winograd_wsc builder writes it (whitespace collapsed, label 0 = A, 1 = B)."""
    text, quote = schema.find("text"), schema.find("quote")
    left, right = _squash(text.findtext("txt1", "")), _squash(text.findtext("txt2", ""))
    quote_left, quote_right = _squash(quote.findtext("quote1", "")), _squash(quote.findtext("quote2", ""))
    pronoun = _squash(text.findtext("pron"))
    pronoun_loc = len(left) + 1 if left else 0
    return {
        "text": " ".join([left, pronoun, right]).strip(),
        "pronoun": pronoun,
        "pronoun_loc": pronoun_loc,
        "quote": " ".join([quote_left, pronoun, quote_right]).strip(),
        "quote_loc": pronoun_loc - (len(quote_left) + 1 if quote_left else 0),
        "options": [_squash(a.text) for a in schema.find("answers").findall("answer")],
        "label": int("B" in _squash(schema.findtext("correctAnswer"))),
        "source": _squash(schema.findtext("source")),
    }


def wsc273_rows(xml_file: str) -> list[dict]:
    """The first 273 schemas of the collection (the builder counts every child of the root)."""
    schemas = list(ET.parse(xml_file).getroot())[:WSC273_SIZE]
    if len(schemas) < WSC273_SIZE or any(s.tag != "schema" for s in schemas):
        raise ValueError(f"{xml_file}: expected {WSC273_SIZE} <schema> elements first")
    return [wsc273_schema(s) for s in schemas]


def wsc273_dataset(xml_file: str, **_):
    """lm-eval ``custom_dataset``: called with the task's metadata and dataset_kwargs."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(wsc273_rows(xml_file))})
