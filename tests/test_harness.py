"""The seven lm-eval benchmarks on the offline mirror (tiny random LLaMA, byte tokenizer).

Besides running every local task, the prompts are checked against lm-eval's OWN task YAMLs: the
installed stock YAML (arc_easy, hellaswag, ...) is copied with only its data source swapped for the
mirror rows converted back to the hub format, and both tasks must produce identical requests.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from layerpuzzle.evaluation.harness import ALL_TASKS, TASKS, evaluate_task, flat_result
from layerpuzzle.evaluation.local_tasks import local_task_manager, render_local_tasks
from layerpuzzle.models.random_models import build_random_model

MIRROR = Path("/work/shared/data")
LIMIT = 3
ARC_E_FIRST = "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")


@pytest.fixture(scope="module")
def llama():
    return build_random_model("llama", seed=0)


def _eval(model, tok, task, **kw):
    args = dict(mirror=MIRROR, limit=LIMIT, batch_size=8, max_length=1024, seed=1234, device="cpu")
    args.update(kw)
    return evaluate_task(model, tok, task, **args)


def test_registry_matches_the_paper_protocol():
    assert list(TASKS) == ["arc_challenge", "arc_easy", "hellaswag", "openbookqa", "piqa", "winogrande", "mmlu"]
    assert [s.display for s in TASKS.values()] == ["ARC-c", "ARC-e", "HellaS", "OBQA", "PIQA", "WinoG", "MMLU(5)"]
    assert {k: s.metric for k, s in TASKS.items()} == {
        "arc_challenge": "acc_norm", "arc_easy": "acc_norm", "hellaswag": "acc_norm", "openbookqa": "acc_norm",
        "piqa": "acc_norm", "winogrande": "acc", "mmlu": "acc",
    }
    assert {k: s.num_fewshot for k, s in TASKS.items() if s.num_fewshot} == {"mmlu": 5}
    assert all(s.mirror_num_fewshot == 0 for s in TASKS.values())  # MMLU's 5 shots live in the local prompt
    assert all(s.hub_task == k for k, s in TASKS.items())


@pytest.mark.parametrize("task", list(TASKS))
def test_every_local_task_runs_on_the_random_model(llama, task):
    model, tok = llama
    flat, raw = _eval(model, tok, task)
    spec = TASKS[task]
    assert flat["task"] == task and flat["metric"] == spec.metric and flat["source"] == "mirror"
    assert flat["n_samples"] == LIMIT and flat["num_fewshot"] == spec.num_fewshot
    assert flat["lm_eval_version"] == "0.4.13"
    # accuracy over 3 documents is k/3
    assert 0.0 <= flat["value"] <= 1.0
    assert flat["value"] * LIMIT == pytest.approx(round(flat["value"] * LIMIT))
    assert flat["value"] == raw["results"][spec.mirror_task][f"{spec.metric},none"]
    assert raw["n-samples"][spec.mirror_task]["effective"] == LIMIT
    assert "samples" not in raw
    text = json.dumps(raw)  # serializable, scratch dir and memory addresses scrubbed
    assert "layerpuzzle-lm-eval-tasks-" not in text and not re.search(r" at 0x[0-9a-f]+>", text)


def _hand_loglikelihood(model, context: str, continuation: str, tok) -> float:
    """Σ log p(continuation bytes | BOS + context bytes): lm-eval's request, computed by hand."""
    ctx = tok(context)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def test_arc_easy_scores_equal_a_hand_computation_and_are_deterministic(llama):
    model, tok = llama
    flat, raw = _eval(model, tok, "arc_easy", limit=3, log_samples=True)
    samples = raw["samples"]["mirror_arc_easy"]
    assert [s["doc_id"] for s in samples] == [0, 1, 2]
    assert samples[0]["arguments"][0][0] == ARC_E_FIRST  # the rendered prompt, identical to lm-eval's arc
    correct = []
    for s in samples:
        lls = [_hand_loglikelihood(model, ctx, cont, tok) for ctx, cont in s["arguments"]]
        assert [r[0][0] for r in s["resps"]] == pytest.approx(lls, abs=1e-3)
        normed = [ll / len(cont) for ll, (_, cont) in zip(lls, s["arguments"])]  # acc_norm: per character
        correct.append(float(max(range(len(normed)), key=normed.__getitem__) == s["doc"]["gold"]))
    assert flat["value"] == pytest.approx(sum(correct) / 3)
    again, raw2 = _eval(model, tok, "arc_easy", limit=3, log_samples=True)
    assert again == flat
    assert raw2["results"] == raw["results"]
    assert raw2["configs"] == raw["configs"]


def test_flat_result_of_a_group_sums_its_subtasks():
    raw = {
        "results": {"mmlu": {"acc,none": 0.25, "acc_stderr,none": 0.01}},
        "n-samples": {"mmlu_anatomy": {"original": 135, "effective": 5}, "mmlu_virology": {"original": 166, "effective": 5}},
    }
    flat = flat_result(raw, TASKS["mmlu"], "mmlu", "hub")
    assert (flat["value"], flat["stderr"], flat["n_samples"], flat["num_fewshot"]) == (0.25, 0.01, 10, 5)
    raw["results"]["mmlu"]["acc_stderr,none"] = "N/A"
    assert flat_result(raw, TASKS["mmlu"], "mmlu", "hub")["stderr"] is None


def test_unknown_task_is_rejected(llama):
    model, tok = llama
    with pytest.raises(ValueError, match="unknown task 'boolq_v9'"):
        _eval(model, tok, "boolq_v9")


def test_render_never_touches_the_templates(tmp_path):
    out = render_local_tasks(MIRROR, tmp_path / "tasks")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"{t}.yaml" for t in ALL_TASKS] + ["utils.py", "piqa_valid.jsonl"]
    )
    for p in out.iterdir():
        if p.suffix in (".yaml", ".py"):
            assert "@MIRROR@" not in p.read_text() and "@TASKDIR@" not in p.read_text()
    piqa = [json.loads(x) for x in (out / "piqa_valid.jsonl").read_text().splitlines()]
    labels = (MIRROR / "piqa" / "valid-labels.lst").read_text().split()
    assert len(piqa) == 1838 and [p["label"] for p in piqa[:5]] == [int(x) for x in labels[:5]]


# --- prompts identical to lm-eval's own task YAMLs ----------------------------------------------

STOCK = Path(__import__("lm_eval").__file__).parent / "tasks"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _hub_rows(task: str, n: int) -> list[dict]:
    """The first n mirror rows converted back to the hub dataset's fields."""
    letters = "ABCDE"
    if task in ("arc_easy", "arc_challenge", "openbookqa"):
        src = {"arc_easy": "arc_easy/arc_easy_test", "arc_challenge": "arc_challenge/arc_challenge_test",
               "openbookqa": "openbookqa/openbookqa_test"}[task]
        rows = []
        for r in _jsonl(MIRROR / f"{src}.llmfoundry.jsonl")[:n]:
            choices = {"text": r["choices"], "label": list(letters[: len(r["choices"])])}
            q = r["query"].removeprefix("Question: ")
            key = "question_stem" if task == "openbookqa" else "question"
            rows.append({key: q, "choices": choices, "answerKey": letters[r["gold"]]})
        return rows
    if task == "hellaswag":
        return [{**r, "label": str(r["label"])} for r in _jsonl(MIRROR / "hellaswag/hellaswag_val_sample1000.jsonl")[:n]]
    if task == "piqa":
        labels = (MIRROR / "piqa/valid-labels.lst").read_text().split()
        return [{**r, "label": int(l)} for r, l in zip(_jsonl(MIRROR / "piqa/valid.jsonl")[:n], labels)]
    if task == "winogrande":
        rows = []
        for r in _jsonl(MIRROR / "winogrande/winogrande_dev.llmfoundry.jsonl")[:n]:
            a, b = r["context_options"]
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]:
                k += 1
            rows.append({"sentence": a[:k] + "_ " + r["continuation"], "option1": a[k:], "option2": b[k:],
                         "answer": str(r["gold"] + 1)})
        return rows
    raise KeyError(task)


STOCK_YAML = {
    "arc_easy": ("arc/arc_easy.yaml", []),
    "arc_challenge": ("arc/arc_easy.yaml", []),
    "openbookqa": ("openbookqa/openbookqa.yaml", []),
    "hellaswag": ("hellaswag/hellaswag.yaml", ["hellaswag/utils.py"]),
    "piqa": ("piqa/piqa.yaml", []),
    "winogrande": ("winogrande/default.yaml", ["winogrande/preprocess_winogrande.py"]),
}
DROP_KEYS = ("tag", "task", "dataset_path", "dataset_name", "dataset_kwargs", "training_split",
             "validation_split", "test_split")


def _stock_task(yaml_text: str, name: str, data: dict[str, Path], cache: Path, extra: str = "") -> str:
    """The stock YAML with its task name and data source replaced (every other line kept)."""
    out, skipping = [], False
    for line in yaml_text.splitlines():
        top_key = re.match(r"^([A-Za-z_]+):", line)
        if top_key:
            skipping = top_key.group(1) in DROP_KEYS
        elif not line.startswith((" ", "-")):
            skipping = False
        if not skipping:
            out.append(line)
    files = "".join(f"    {split}: {path}\n" for split, path in data.items())
    head = f"task: {name}\ndataset_path: json\ndataset_name: null\ndataset_kwargs:\n  data_files:\n{files}  cache_dir: {cache}\ntest_split: test\n"
    return head + "\n".join(out) + "\n" + extra


def _requests(task_obj, limit: int) -> dict[int, list]:
    task_obj.build_all_requests(limit=limit, rank=0, world_size=1)
    by_doc: dict[int, list] = {}
    for inst in sorted(task_obj.instances, key=lambda i: (i.doc_id, i.idx)):
        by_doc.setdefault(inst.doc_id, []).append(tuple(inst.arguments))
    return by_doc


def _golds(task_obj, n: int) -> list:
    docs = task_obj.eval_docs
    return [task_obj.doc_to_target(docs[i]) for i in range(n)]


def test_local_prompts_equal_stock_lm_eval_prompts(tmp_path):
    from lm_eval.tasks import TaskManager

    n = 6
    ref = tmp_path / "ref"
    for task, (yaml_rel, helpers) in STOCK_YAML.items():
        d = ref / task
        d.mkdir(parents=True)
        for h in helpers:
            shutil.copy(STOCK / h, d / Path(h).name)
        data = {"test": _write(d / "test.jsonl", _hub_rows(task, n))}
        (d / "task.yaml").write_text(_stock_task((STOCK / yaml_rel).read_text(), f"ref_{task}", data, tmp_path / "cache"))
    with local_task_manager(MIRROR) as (local_tm, _):
        local = local_tm.load([TASKS[t].mirror_task for t in STOCK_YAML])["tasks"]
        stock = TaskManager(include_path=str(ref), include_defaults=False).load([f"ref_{t}" for t in STOCK_YAML])["tasks"]
        for task in STOCK_YAML:
            mine, theirs = _requests(local[TASKS[task].mirror_task], n), _requests(stock[f"ref_{task}"], n)
            assert len(mine) == n and mine == theirs, task
            assert _golds(local[TASKS[task].mirror_task], n) == _golds(stock[f"ref_{task}"], n), task


@pytest.mark.parametrize("subject", ["abstract_algebra", "high_school_us_history"])
def test_local_mmlu_prompt_equals_stock_5shot_prompt(tmp_path, subject):
    """Stock mmlu template + lm-eval's own first_n 5-shot sampler on one subject == mirror_mmlu's 0-shot prompt."""
    from lm_eval.tasks import TaskManager

    def hub(rows):
        return [{"question": r["question"], "subject": r["subject"], "answer": r["answer"],
                 "choices": [r[f"choice{i}"] for i in range(4)]} for r in rows if r["subject"] == subject]

    d = tmp_path / "ref"
    d.mkdir()
    data = {"test": _write(d / "test.jsonl", hub(_jsonl(MIRROR / "mmlu/mmlu_test_first20_per_subject.jsonl"))[:3]),
            "dev": _write(d / "dev.jsonl", hub(_jsonl(MIRROR / "mmlu/mmlu_dev.jsonl")))}
    template = (STOCK / "mmlu/default/_default_template_yaml").read_text()
    about = subject.replace("_", " ")
    extra = f'description: "The following are multiple choice questions (with answers) about {about}.\\n\\n"\nnum_fewshot: 5\n'
    (d / "task.yaml").write_text(_stock_task(template, "ref_mmlu", data, tmp_path / "cache", extra))
    stock = TaskManager(include_path=str(d), include_defaults=False).load(["ref_mmlu"])["tasks"]["ref_mmlu"]
    assert stock.config.fewshot_config.sampler == "first_n"
    theirs = _requests(stock, 3)
    with local_task_manager(MIRROR) as (local_tm, _):
        local = local_tm.load(["mirror_mmlu"])["tasks"]["mirror_mmlu"]
        mine = _requests(local, None)
        first = [i for i, doc in enumerate(local.eval_docs) if doc["subject"] == subject][0]
    assert [mine[first + k] for k in range(3)] == [theirs[k] for k in range(3)]
    assert theirs[0][0][0].count("\nAnswer: ") == 5 and theirs[0][1][1] == " B"


def test_hub_task_names_exist_in_lm_eval():
    """Hub mode cannot run offline, but its task names must be lm-eval's (mmlu is a group)."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager()
    assert {s.hub_task for s in TASKS.values()} <= set(tm.all_tasks)
    assert "mmlu" in tm.all_groups and "arc_easy" in tm.all_subtasks


# ---------------------------------------------------------------------- MMLU by subject
def test_mmlu_subjects_are_the_mirror_s_and_lm_eval_s():
    """The 57 names the config accepts are the data's subjects and lm-eval's mmlu_<subject> tasks (hub mode)."""
    from lm_eval.tasks import TaskManager

    from layerpuzzle.evaluation.harness import mirror_mmlu_subjects
    from layerpuzzle.mmlu_subjects import MMLU_SUBJECTS

    in_mirror = mirror_mmlu_subjects(MIRROR)
    assert len(MMLU_SUBJECTS) == 57 and sorted(set(in_mirror)) == list(MMLU_SUBJECTS)
    assert len(in_mirror) == 57 * 20
    assert {f"mmlu_{s}" for s in MMLU_SUBJECTS} <= set(TaskManager().all_subtasks)


def test_subject_doc_indices_keep_document_order_and_limit_per_subject():
    from layerpuzzle.mmlu_subjects import subject_doc_indices

    docs = ["anatomy", "anatomy", "virology", "anatomy", "virology", "nutrition"]
    assert subject_doc_indices(docs, ["virology", "anatomy"]) == [0, 1, 2, 3, 4]
    assert subject_doc_indices(docs, ["virology", "anatomy"], limit=1) == [0, 2]
    assert subject_doc_indices(docs, ["nutrition"], limit=5) == [5]
    with pytest.raises(ValueError, match=r"unknown MMLU subject\(s\) \['astrology'\]; allowed: abstract_algebra"):
        subject_doc_indices(docs, ["astrology"])


def test_pooled_result_is_the_size_weighted_mean_with_lm_eval_s_pooled_stderr():
    raw = {"results": {"mmlu_anatomy": {"acc,none": 0.5, "acc_stderr,none": 0.2},
                       "mmlu_virology": {"acc,none": 0.25, "acc_stderr,none": 0.1}},
           "n-samples": {"mmlu_anatomy": {"original": 135, "effective": 4},
                         "mmlu_virology": {"original": 166, "effective": 8}}}
    from layerpuzzle.evaluation.harness import pooled_result

    flat = pooled_result(raw, TASKS["mmlu"], ["mmlu_anatomy", "mmlu_virology"], "hub")
    assert flat["value"] == pytest.approx((0.5 * 4 + 0.25 * 8) / 12)  # 1/3
    # pooled variance: sum (n_i - 1) n_i se_i^2 / (N - k), over N
    assert flat["stderr"] == pytest.approx(((3 * 4 * 0.04 + 7 * 8 * 0.01) / (12 - 2) / 12) ** 0.5)
    assert (flat["n_samples"], flat["lm_eval_task"], flat["num_fewshot"]) == (12, "mmlu_anatomy,mmlu_virology", 5)


def test_mmlu_subjects_select_the_same_questions_as_the_whole_run(llama):
    """Subjects on the mirror go through lm-eval's ``samples``: abstract algebra's first 3 questions (the mirror's
    first 3) give exactly the plain limit=3 run; two later subjects give their first 2 questions each, and acc is
    the mean of the logged per-question accs."""
    model, tok = llama
    plain, raw_plain = _eval(model, tok, "mmlu", limit=3, log_samples=True)
    by_subject, raw_subj = _eval(model, tok, "mmlu", limit=3, log_samples=True, subjects=["abstract_algebra"])
    assert by_subject == plain
    assert [s["resps"] for s in raw_subj["samples"]["mirror_mmlu"]] == \
        [s["resps"] for s in raw_plain["samples"]["mirror_mmlu"]]
    flat, raw = _eval(model, tok, "mmlu", limit=2, log_samples=True, subjects=["virology", "college_physics"])
    samples = raw["samples"]["mirror_mmlu"]
    # file order: college_physics (subject 11 of 57) before virology (56); 20 questions per subject
    assert [s["doc_id"] for s in samples] == [200, 201, 1100, 1101]
    assert [s["doc"]["subject"] for s in samples] == ["college_physics"] * 2 + ["virology"] * 2
    assert flat["n_samples"] == 4 and raw["n-samples"]["mirror_mmlu"]["effective"] == 4
    assert flat["value"] == pytest.approx(sum(s["acc"] for s in samples) / 4)


def test_subjects_are_refused_for_other_tasks(llama):
    model, tok = llama
    with pytest.raises(ValueError, match=r"task 'arc_easy' has none \(allowed: task 'mmlu'\)"):
        _eval(model, tok, "arc_easy", subjects=["anatomy"])
    with pytest.raises(ValueError, match=r"unknown or empty \['alchemy'\]"):
        _eval(model, tok, "mmlu", subjects=["alchemy"])
