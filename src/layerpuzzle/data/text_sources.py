"""Where text comes from: the Hugging Face hub (default) or a local mirror.

The mirror is a directory with the layout described in docs/calibration.md
("The data mirror and how it differs from the hub").  It is chosen by the config key ``data.mirror`` or, when
that is empty, the environment variable ``LAYERPUZZLE_DATA_MIRROR``.

Two kinds of text are served:

* calibration rows (``calibration_rows``): a list of text rows that the
  calibration builder shuffles, selects and joins (CoMe code convention,
  docs/calibration.md);
* perplexity text (``perplexity_text``): one string per evaluation corpus,
  built with the SparseGPT/Wanda protocol (docs/evaluation.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CALIBRATION_DATASETS = ("wikitext2", "c4", "c4en", "pg19", "mmlu", "alpaca")
PERPLEXITY_DATASETS = ("wikitext2", "c4")
MIRROR_ENV = "LAYERPUZZLE_DATA_MIRROR"

# Files of the mirror layout, relative to its root.
MIRROR_FILES = {
    "wikitext2/train": "wikitext2/wiki.train.raw.first1MB_nonempty_lines.txt",
    "wikitext2/test": "wikitext2/wiki.test.raw",
    "wikitext2/test_skeleton": "wikitext2/wikitext-2-tokenized.test.txt",
    "c4/validation": "c4/c4_realnewslike_val_200_prompt_response.jsonl",
    "c4en/validation": "c4_en_validation/c4_en_validation_2k.yxanul.parquet",
    "pg19/train": "pg19_substitute/tinyshakespeare.txt",
    "mmlu/test": "mmlu/mmlu_test_first20_per_subject.jsonl",
    "mmlu/dev": "mmlu/mmlu_dev.jsonl",
    "alpaca/train": "alpaca/alpaca_data_1k.jsonl",
}


# calibration corpus -> the mirror file its rows come from
CALIBRATION_MIRROR_KEYS = {"wikitext2": "wikitext2/train", "c4": "c4/validation", "c4en": "c4en/validation",
                           "pg19": "pg19/train",
                           "mmlu": "mmlu/test", "alpaca": "alpaca/train"}


def resolve_mirror(configured: str | os.PathLike | None) -> Path | None:
    """The mirror directory: the config value, else ``$LAYERPUZZLE_DATA_MIRROR``, else None (hub)."""
    value = configured or os.environ.get(MIRROR_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"data mirror directory {str(path)!r} does not exist (config data.mirror / ${MIRROR_ENV})")
    return path


def mirror_file(mirror: Path, key: str) -> Path:
    path = Path(mirror) / MIRROR_FILES[key]
    if not path.is_file():
        raise FileNotFoundError(f"data mirror is missing {key}: expected the file {str(path)!r}")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _wikitext_rows(text: str) -> list[str]:
    """Rows as the HF ``wikitext`` builder yields them: each line with its newline, blank lines as ''."""
    text = text.replace("\r\n", "\n")
    return [line if line.strip() else "" for line in text.splitlines(keepends=True)]


def _wikitext_rows_from_skeleton(raw: str, skeleton: str) -> list[str]:
    """Re-insert the blank rows the mirror's raw test file lacks.

    The mirror's ``wiki.test.raw`` holds only the 2,891 non-empty rows of the
    4,358-row HF test split; the tokenized test file has every row, blank ones
    included, in the same order.  Its blank lines tell where the '' rows go, so
    the HF row list (and ``"\\n\\n".join`` of it) is rebuilt exactly.
    """
    filled = iter(_wikitext_rows(raw))
    rows = [next(filled) if line.strip() else "" for line in skeleton.splitlines()]
    if next(filled, None) is not None:
        raise ValueError("wikitext-2 raw and tokenized test files do not align")
    return rows


def _hub_error(what: str, exc: Exception) -> RuntimeError:
    return RuntimeError(
        f"could not load {what} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
        f"Offline? Point config data.mirror or ${MIRROR_ENV} at a local mirror directory "
        f"(layout in docs/calibration.md)."
    )


def _load_hub(what: str, *args, **kwargs):
    try:
        import datasets

        return datasets.load_dataset(*args, **kwargs)
    except Exception as exc:  # network, missing cache, offline mode: all end here
        raise _hub_error(what, exc) from exc


def format_mmlu_question(row: dict[str, Any], include_answer: bool = False) -> str:
    """MMLU prompt as the CoMe/MKA code formats it: question, lettered choices, 'Answer:'."""
    choices = row.get("choices") or [row[f"choice{i}"] for i in range(4)]
    text = row["question"] + "".join(f"\n{l}. {c}" for l, c in zip("ABCD", choices)) + "\nAnswer:"
    if include_answer:
        text += " " + "ABCD"[int(row["answer"])] + "\n\n"
    return text


def calibration_rows(dataset: str, mirror: Path | None) -> tuple[list[str], dict[str, Any]]:
    """Text rows of a calibration corpus and a description of where they came from.

    wikitext2: WikiText-2-raw-v1 train rows; c4: C4 documents; c4en: whole C4 ``en`` documents (on the hub
    the same train shard as c4; on the mirror 2000 whole validation documents, where c4 has 200 truncated
    realnewslike ones), the calibration corpus of SparseGPT and GPTQ; pg19: PG19 train
    books; mmlu: MMLU test questions as prompts; alpaca: instruction, input and
    output joined by newlines (alpaca-cleaned).
    """
    if dataset not in CALIBRATION_DATASETS:
        raise ValueError(f"unknown calibration dataset {dataset!r}; allowed: {', '.join(CALIBRATION_DATASETS)}")
    info: dict[str, Any] = {"dataset": dataset, "source": "mirror" if mirror else "hub"}
    if mirror is None:
        if dataset == "wikitext2":
            rows = list(_load_hub("WikiText-2 train", "wikitext", "wikitext-2-raw-v1", split="train")["text"])
        elif dataset in ("c4", "c4en"):
            ds = _load_hub(
                "C4 train shard 0", "allenai/c4",
                data_files={"train": "en/c4-train.00000-of-01024.json.gz"}, split="train",
            )
            rows = list(ds["text"])
        elif dataset == "pg19":
            rows = list(_load_hub("PG19 train", "deepmind/pg19", split="train")["text"])
        elif dataset == "mmlu":
            rows = [format_mmlu_question(r) for r in _load_hub("MMLU test", "cais/mmlu", "all", split="test")]
        else:
            ds = _load_hub("alpaca-cleaned", "yahma/alpaca-cleaned", split="train")
            rows = ["\n".join(x for x in (r["instruction"], r["input"], r["output"]) if x) for r in ds]
        info["hub_id"] = {"wikitext2": "wikitext/wikitext-2-raw-v1", "c4": "allenai/c4", "c4en": "allenai/c4",
                          "pg19": "deepmind/pg19",
                          "mmlu": "cais/mmlu", "alpaca": "yahma/alpaca-cleaned"}[dataset]
        return rows, info

    if dataset == "wikitext2":
        path = mirror_file(mirror, "wikitext2/train")
        rows = _wikitext_rows(path.read_text(encoding="utf-8"))
        info["note"] = "mirror holds the non-empty train rows only (first 1 MB), so N rows hold more text than on the hub"
    elif dataset == "c4":
        path = mirror_file(mirror, "c4/validation")
        rows = [r["prompt"] + r["response"] for r in read_jsonl(path)]
        info["note"] = "mirror holds 200 truncated C4 realnewslike validation documents, not C4 en train"
    elif dataset == "c4en":
        import pyarrow.parquet as pq

        path = mirror_file(mirror, "c4en/validation")
        rows = [t for t in pq.read_table(path, columns=["text"]).column("text").to_pylist() if t]
        info["note"] = ("mirror holds 2000 whole C4 en validation documents (a third-party subset, in its stored "
                        "order), not the en train shard SparseGPT/GPTQ sample from")
    elif dataset == "pg19":
        path = mirror_file(mirror, "pg19/train")
        rows = [path.read_text(encoding="utf-8")]
        info["note"] = "PG19 substitute (tinyshakespeare, one document): results are labelled 'PG19 substitute'"
        info["substitute"] = True
    elif dataset == "mmlu":
        path = mirror_file(mirror, "mmlu/test")
        rows = [format_mmlu_question(r) for r in read_jsonl(path)]
    else:
        path = mirror_file(mirror, "alpaca/train")
        rows = ["\n".join(x for x in (r["instruction"], r["input"], r["output"]) if x) for r in read_jsonl(path)]
        info["note"] = "mirror holds a 1000-record third-party Alpaca subset"
    info["path"] = str(path)
    return rows, info


def mmlu_rows_by_subject(mirror: Path | None) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """MMLU prompts grouped by subject, for the released loader's per-subject selection.

    Hub: each subject's ``validation`` split of ``cais/mmlu`` (the released loader asks for a
    ``train`` split, which the subject configs lack, and falls back to ``validation``).
    Mirror: its test rows (the first 20 of each subject), the only per-subject rows it holds.
    """
    info: dict[str, Any] = {"dataset": "mmlu", "source": "mirror" if mirror else "hub", "selection": "per_subject"}
    grouped: dict[str, list[str]] = {}
    if mirror is None:
        from datasets import get_dataset_config_names

        try:
            subjects = sorted(c for c in get_dataset_config_names("cais/mmlu") if c not in ("all", "auxiliary_train"))
        except Exception as exc:
            raise _hub_error("MMLU subject list", exc) from exc
        for subject in subjects:
            ds = _load_hub(f"MMLU {subject} validation", "cais/mmlu", subject, split="validation")
            grouped[subject] = [format_mmlu_question(r) for r in ds]
        info["hub_id"] = "cais/mmlu (per-subject validation splits)"
        return grouped, info
    path = mirror_file(mirror, "mmlu/test")
    for r in read_jsonl(path):
        grouped.setdefault(r["subject"], []).append(format_mmlu_question(r))
    info["path"] = str(path)
    info["note"] = "mirror: the first 20 test rows of each subject (the released loader reads the validation split)"
    return grouped, info


def perplexity_text(dataset: str, mirror: Path | None) -> tuple[str, dict[str, Any]]:
    """The evaluation text of docs/evaluation.md as one string.

    wikitext2: WikiText-2-raw-v1 test rows joined with "\\n\\n".
    c4: the first 1,100 documents of ``en/c4-validation.00000-of-00008`` joined with " "
    (the mirror's 200 truncated realnewslike documents when offline).
    """
    if dataset not in PERPLEXITY_DATASETS:
        raise ValueError(f"unknown perplexity dataset {dataset!r}; allowed: {', '.join(PERPLEXITY_DATASETS)}")
    info: dict[str, Any] = {"dataset": dataset, "source": "mirror" if mirror else "hub"}
    if dataset == "wikitext2":
        if mirror is None:
            rows = list(_load_hub("WikiText-2 test", "wikitext", "wikitext-2-raw-v1", split="test")["text"])
        else:
            path = mirror_file(mirror, "wikitext2/test")
            skeleton = mirror_file(mirror, "wikitext2/test_skeleton")
            rows = _wikitext_rows_from_skeleton(path.read_text(encoding="utf-8"), skeleton.read_text(encoding="utf-8"))
            info["path"] = str(path)
            info["note"] = "blank rows re-inserted from the tokenized test file: identical to the HF test split rows"
        return "\n\n".join(rows), info
    if mirror is None:
        ds = _load_hub(
            "C4 validation shard 0", "allenai/c4",
            data_files={"validation": "en/c4-validation.00000-of-00008.json.gz"}, split="validation",
        )
        docs = list(ds["text"][:1100])
    else:
        path = mirror_file(mirror, "c4/validation")
        docs = [r["prompt"] + r["response"] for r in read_jsonl(path)][:1100]
        info["path"] = str(path)
        info["note"] = "mirror: 200 truncated C4 realnewslike validation documents"
    return " ".join(docs), info
