"""The extra benchmarks (BoolQ, RACE-high/-middle, CommonsenseQA, WSC273, SuperGLUE WSC) on the mirror.

As for the paper's seven (test_harness.py), each local task is checked against lm-eval's OWN task
YAML: the installed stock YAML (with its helper .py, copied) gets only its data source swapped for
the mirror rows converted, here in the test, to the hub dataset's fields the way the hub's dataset
builders do it. Both tasks must build identical requests and golds (for every document of RACE,
WSC and WSC273, the sets whose rows are rebuilt; the first 300 of BoolQ and CommonsenseQA), and
their prompt settings (doc_to_text/target/choice, delimiters, metrics, version) must be the same.
"""

from __future__ import annotations

import inspect
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from layerpuzzle.evaluation.harness import ALL_TASKS, EXTRA_TASKS, TASKS, check_tasks
from layerpuzzle.evaluation.local_tasks import TASK_MIRROR_FILES, benchmark_mirror_files, local_task_manager
from layerpuzzle.tables.columns import EXTRA_TASK_COLUMNS, TASK_COLUMNS
from test_harness import LIMIT, STOCK, _eval, _golds, _jsonl, _requests, _stock_task, _write, llama  # noqa: F401

MIRROR = Path("/work/shared/data")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")


def test_extra_registry():
    assert list(EXTRA_TASKS) == ["boolq", "race_high", "race_middle", "commonsense_qa", "wsc273", "wsc"]
    assert {k: s.hub_task for k, s in EXTRA_TASKS.items()} == {
        "boolq": "boolq", "race_high": "race", "race_middle": None, "commonsense_qa": "commonsense_qa",
        "wsc273": "wsc273", "wsc": "wsc",
    }
    assert all(s.metric == "acc" and s.num_fewshot == 0 == s.mirror_num_fewshot for s in EXTRA_TASKS.values())
    assert {k: s.mirror_task for k, s in EXTRA_TASKS.items()} == {k: f"mirror_{k}" for k in EXTRA_TASKS}
    assert ALL_TASKS == {**TASKS, **EXTRA_TASKS} and len(TASKS) == 7
    # table headers: the extra ones apart, the seven CoMe columns (Avg/RPT) untouched
    assert EXTRA_TASK_COLUMNS == {k: s.display for k, s in EXTRA_TASKS.items()}
    assert TASK_COLUMNS == {k: s.display for k, s in TASKS.items()}


def test_task_lists_and_mirror_files(mirror):
    assert check_tasks({"mmlu": {}}) == ["mmlu"]
    assert check_tasks(["boolq", "race_high", "mmlu"]) == ["boolq", "race_high", "mmlu"]
    with pytest.raises(ValueError, match="unknown task 'race'"):
        check_tasks(["race"])
    with pytest.raises(ValueError, match="duplicate"):
        check_tasks(["wsc", "wsc"])
    assert set(TASK_MIRROR_FILES) == set(ALL_TASKS)
    assert benchmark_mirror_files(mirror, ["wsc273", "race_middle"]) == [
        str(mirror / "wsc273/WSCollection.xml"), str(mirror / "race/RACE_test_middle.per_article.jsonl")]
    with pytest.raises(KeyError, match="race"):
        benchmark_mirror_files(mirror, ["race"])


def test_hub_tasks_exist_in_lm_eval_and_race_middle_does_not():
    from lm_eval.tasks import TaskManager

    tm = TaskManager()
    hub = {s.hub_task for s in EXTRA_TASKS.values() if s.hub_task}
    assert hub <= set(tm.all_subtasks)
    assert not [t for t in tm.all_tasks if "race" in t and "middle" in t]  # no stock RACE-middle task


def test_race_middle_has_no_hub_source(llama):
    model, tok = llama
    with pytest.raises(ValueError, match="no stock lm-eval task"):
        _eval(model, tok, "race_middle", mirror=None)


@pytest.mark.parametrize("task", list(EXTRA_TASKS))
def test_every_extra_local_task_runs_on_the_random_model(llama, task):
    model, tok = llama
    flat, raw = _eval(model, tok, task)
    spec = EXTRA_TASKS[task]
    assert flat["task"] == task and flat["metric"] == "acc" and flat["source"] == "mirror"
    assert flat["n_samples"] == LIMIT and flat["num_fewshot"] == 0 and flat["lm_eval_task"] == spec.mirror_task
    assert flat["value"] * LIMIT == pytest.approx(round(flat["value"] * LIMIT))
    assert flat["value"] == raw["results"][spec.mirror_task]["acc,none"]
    assert "layerpuzzle-lm-eval-tasks-" not in json.dumps(raw)


# --- the mirror's original files as the hub datasets' rows, rebuilt here -------------------------

def _superglue_label(x) -> int:  # super_glue: JSON bool -> "True"/"False" -> ClassLabel(["False", "True"])
    assert isinstance(x, bool)
    return ["False", "True"].index(str(x))


def _wsc_fixed(r: dict) -> dict:
    """super_glue ``wsc.fixed``: target flattened, spans that are not in the text repaired."""
    ex = {"text": r["text"], **r["target"]}
    for k in ("span1", "span2"):
        span = ex[f"{k}_text"]
        if span in ex["text"] or span in ("Kamenev and Zinoviev", "Kamenev, Zinoviev, and Stalin"):
            continue
        if "theyscold" in span:
            ex["span2_index"] = 10
        first = ex["text"].split()[ex[f"{k}_index"]]
        span = (span[0].lower() if first[0].islower() else span[0].upper()) + span[1:]
        ex[f"{k}_text"] = span.rstrip(".").replace("\n", " ")
        assert ex[f"{k}_text"] in ex["text"]
    return {**ex, "idx": r["idx"], "label": _superglue_label(r["label"])}


def _wsc273(path: Path) -> list[dict]:
    """winograd_wsc ``wsc273``: the first 273 children of the XML root."""
    def ws(t):
        return " ".join((t or "").split())

    rows = []
    for schema in list(ET.parse(path).getroot())[:273]:
        t, q = schema.find("text"), schema.find("quote")
        left, right, pron = ws(t.findtext("txt1", "")), ws(t.findtext("txt2", "")), ws(t.findtext("pron"))
        q1, q2 = ws(q.findtext("quote1", "")), ws(q.findtext("quote2", ""))
        loc = len(left) + 1 if len(left) > 0 else 0
        rows.append({
            "text": " ".join([left, pron, right]).strip(), "pronoun": pron, "pronoun_loc": loc,
            "quote": " ".join([q1, pron, q2]).strip(), "quote_loc": loc - (len(q1) + 1 if len(q1) > 0 else 0),
            "options": [ws(a.text) for a in schema.find("answers").findall("answer")],
            "label": int("B" in ws(schema.findtext("correctAnswer"))), "source": ws(schema.findtext("source")),
        })
    return rows


def _race(path: Path) -> list[dict]:
    """EleutherAI/race: one document per article, its questions as a Python-literal list."""
    return [{"article": r["article"],
             "problems": str([{"question": q, "answer": a, "options": o}
                              for q, a, o in zip(r["questions"], r["answers"], r["options"])])}
            for r in _jsonl(path)]


def _hub_rows(task: str) -> list[dict]:
    if task == "boolq":
        return [{**r, "label": _superglue_label(r["label"])} for r in _jsonl(MIRROR / "boolq/superglue_boolq_val.jsonl")]
    if task == "wsc":
        return [_wsc_fixed(r) for r in _jsonl(MIRROR / "wsc/superglue_wsc_val.jsonl")]
    if task == "wsc273":
        return _wsc273(MIRROR / "wsc273/WSCollection.xml")
    if task in ("race_high", "race_middle"):
        return _race(MIRROR / f"race/RACE_test_{task.split('_')[1]}.per_article.jsonl")
    if task == "commonsense_qa":
        return _jsonl(MIRROR / "commonsense_qa/validation.hf_tau.jsonl")
    raise KeyError(task)


def test_hub_rows_match_the_known_items():
    """What SOURCES.md and the hub datasets say about these sets (counts, first/last items, label balance)."""
    boolq = _hub_rows("boolq")
    assert len(boolq) == 3270 and sum(r["label"] for r in boolq) == 2033
    assert boolq[0]["question"] == "does ethanol take more energy make that produces" and boolq[0]["label"] == 0
    wsc = _hub_rows("wsc")
    assert len(wsc) == 104 and sum(r["label"] for r in wsc) == 38
    fixed = {r["idx"]: r["span1_text"] for r, o in zip(wsc, _jsonl(MIRROR / "wsc/superglue_wsc_val.jsonl"))
             if r["span1_text"] != o["target"]["span1_text"]}
    assert fixed == {5: "the table", 23: "the table", 28: "the lake", 29: "the oatmeal cookies", 51: "the woman",
                     81: "the oatmeal cookies", 87: "the lake", 89: "the chocolate chip cookies"}
    w273 = _hub_rows("wsc273")
    assert len(w273) == 273
    assert w273[0]["text"] == "The city councilmen refused the demonstrators a permit because they feared violence."
    assert (w273[0]["pronoun_loc"], w273[0]["label"]) == (63, 0)
    assert w273[272]["text"].startswith("Carol believed that Rebecca regretted") and w273[272]["label"] == 1
    high, middle = _hub_rows("race_high"), _hub_rows("race_middle")
    assert (len(high), sum(r["problems"].count("'question':") for r in high)) == (1045, 3498)
    assert (len(middle), sum(r["problems"].count("'question':") for r in middle)) == (362, 1436)
    csqa = _hub_rows("commonsense_qa")
    assert len(csqa) == len({r["id"] for r in csqa}) == 1221


STOCK_YAML = {  # task -> (stock YAML, helper files it loads with !function)
    "boolq": ("super_glue/boolq/default.yaml", []),
    "race_high": ("race/race.yaml", ["race/preprocess_race.py"]),
    "race_middle": ("race/race.yaml", ["race/preprocess_race.py"]),  # lm-eval's race over the middle set
    "commonsense_qa": ("commonsense_qa/default.yaml", []),
    "wsc273": ("wsc273/default.yaml", ["wsc273/utils.py"]),
    "wsc": ("super_glue/wsc/default.yaml", ["super_glue/wsc/preprocess_wsc.py"]),
}
# documents compared: all of them, except for the two sets whose rows are the hub's as they are
# (CommonsenseQA) or need only the label cast (BoolQ), where the first 300 keep the test short
COMPARED = {"boolq": 300, "commonsense_qa": 300}
PROMPT_FIELDS = ("output_type", "doc_to_text", "doc_to_target", "doc_to_choice", "target_delimiter",
                 "fewshot_delimiter", "description", "num_fewshot", "metric_list", "should_decontaminate",
                 "doc_to_decontamination_query", "metadata")


def _prompt_config(task_obj, process_docs: bool) -> dict:
    """The prompt-relevant config; a function compares by its source (copied helper == lm-eval's own).
    process_docs only where the stock task has one (WSC273); elsewhere ours only converts the rows."""
    cfg = task_obj.config
    fields = PROMPT_FIELDS + (("process_docs",) if process_docs else ())
    out = {}
    for f in fields:
        v = getattr(cfg, f)
        if f == "metadata":  # lm-eval adds the YAML's own path
            v = {k: x for k, x in (v or {}).items() if k != "config_source"}
        out[f] = inspect.getsource(v) if callable(v) else v
    return out


def test_extra_local_prompts_equal_stock_lm_eval_prompts_on_every_document(tmp_path):
    from lm_eval.tasks import TaskManager

    assert set(STOCK_YAML) == set(EXTRA_TASKS)
    ref = tmp_path / "ref"
    counts = {}
    for task, (yaml_rel, helpers) in STOCK_YAML.items():
        d = ref / task
        d.mkdir(parents=True)
        for h in helpers:
            shutil.copy(STOCK / h, d / Path(h).name)
        rows = _hub_rows(task)
        counts[task] = len(rows)
        data = {"test": _write(d / "test.jsonl", rows)}
        (d / "task.yaml").write_text(_stock_task((STOCK / yaml_rel).read_text(), f"ref_{task}", data, tmp_path / "cache"))
    with local_task_manager(MIRROR) as (local_tm, _):
        local = local_tm.load([EXTRA_TASKS[t].mirror_task for t in STOCK_YAML])["tasks"]
        stock = TaskManager(include_path=str(ref), include_defaults=False).load([f"ref_{t}" for t in STOCK_YAML])["tasks"]
        for task, total in counts.items():
            mine_t, theirs_t = local[EXTRA_TASKS[task].mirror_task], stock[f"ref_{task}"]
            assert len(mine_t.eval_docs) == total == len(theirs_t.eval_docs), task
            n = COMPARED.get(task, total)
            mine, theirs = _requests(mine_t, COMPARED.get(task)), _requests(theirs_t, COMPARED.get(task))
            assert len(mine) == n and mine == theirs, task
            assert _golds(mine_t, n) == _golds(theirs_t, n), task
            with_pd = theirs_t.config.process_docs is not None
            assert with_pd == (task == "wsc273")
            assert _prompt_config(mine_t, with_pd) == _prompt_config(theirs_t, with_pd), task
