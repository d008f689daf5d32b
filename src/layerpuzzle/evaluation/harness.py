"""Zero-/few-shot benchmarks through lm-eval 0.4.13 (docs/evaluation.md).

Seven benchmarks, each with the metric the paper reports: acc_norm for ARC-c, ARC-e, HellaSwag,
OBQA and PIQA; acc for WinoGrande and MMLU (5-shot, the lm-eval ``mmlu`` group average).
``TASKS`` holds exactly these seven (the results tables average them).  ``EXTRA_TASKS`` holds the
benchmarks of other experiments, all 0-shot acc with lm-eval's defaults: BoolQ, RACE-high (lm-eval
``race``), RACE-middle (no stock lm-eval task: mirror only), CommonsenseQA, WSC273 and SuperGLUE
WSC.  ``evaluate_task`` takes a key of either.

Two sources of the same benchmark:

* hub (``mirror=None``): the standard lm-eval task (``mmlu`` is lm-eval's group) with the default
  ``TaskManager``; needs the Hugging Face hub.
* mirror: the local task of ``resources/lm_eval_tasks`` rendered over the offline data mirror
  (see ``local_tasks``); prompts are identical to the hub tasks, the data are the mirror's
  (sometimes subsets, see docs/evaluation.md).  ``mirror_mmlu`` builds the 5-shot prompt in
  ``doc_to_text`` and therefore runs with lm-eval ``num_fewshot=0``.

The model is passed to lm-eval as a loaded object (``HFLM(pretrained=model)``), so a pruned or
merged model never has to be saved first.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from ..data.text_sources import mirror_file, read_jsonl
from ..mmlu_subjects import subject_doc_indices, unknown_subjects
from .local_tasks import local_task_manager

RENDERED_MARK = "<rendered_tasks>"


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark: its lm-eval task names, reported metric and shots.

    ``num_fewshot`` is the number of solved examples in the prompt.  ``mirror_num_fewshot`` is what
    lm-eval is told in mirror mode: 0 for MMLU, whose local task writes the 5 shots into the prompt.
    """

    key: str
    display: str
    hub_task: str | None  # None: lm-eval has no stock task for it, the mirror task is the only source
    mirror_task: str
    metric: str
    num_fewshot: int
    mirror_num_fewshot: int


def _spec(key: str, display: str, metric: str, num_fewshot: int = 0, mirror_num_fewshot: int = 0) -> TaskSpec:
    return TaskSpec(key, display, key, f"mirror_{key}", metric, num_fewshot, mirror_num_fewshot)


# Table order of the paper: ARC-c, ARC-e, HellaS, OBQA, PIQA, WinoG, MMLU(5).
TASKS: dict[str, TaskSpec] = {
    s.key: s
    for s in (
        _spec("arc_challenge", "ARC-c", "acc_norm"),
        _spec("arc_easy", "ARC-e", "acc_norm"),
        _spec("hellaswag", "HellaS", "acc_norm"),
        _spec("openbookqa", "OBQA", "acc_norm"),
        _spec("piqa", "PIQA", "acc_norm"),
        _spec("winogrande", "WinoG", "acc"),
        _spec("mmlu", "MMLU(5)", "acc", num_fewshot=5, mirror_num_fewshot=0),
    )
}


# Not in the paper's tables; lm-eval's default (0-shot) settings and acc, its only metric for each.
EXTRA_TASKS: dict[str, TaskSpec] = {
    s.key: s
    for s in (
        _spec("boolq", "BoolQ", "acc"),
        TaskSpec("race_high", "RACE-H", "race", "mirror_race_high", "acc", 0, 0),
        TaskSpec("race_middle", "RACE-M", None, "mirror_race_middle", "acc", 0, 0),
        _spec("commonsense_qa", "CSQA", "acc"),
        _spec("wsc273", "WSC273", "acc"),
        _spec("wsc", "WSC", "acc"),
    )
}

ALL_TASKS: dict[str, TaskSpec] = {**TASKS, **EXTRA_TASKS}


def lm_eval_version() -> str:
    return importlib.metadata.version("lm_eval")


def _task_spec(task: str) -> TaskSpec:
    if task not in ALL_TASKS:
        raise ValueError(f"unknown task {task!r}; allowed: {', '.join(ALL_TASKS)}")
    return ALL_TASKS[task]


def check_tasks(tasks) -> list[str]:
    """The task keys of ``tasks`` (any iterable of keys, e.g. a config's task mapping) in order,
    after checking that each is a known benchmark; an evaluation may run any subset."""
    keys = list(tasks)
    for t in keys:
        _task_spec(t)
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate task in {keys}")
    return keys


def json_safe(results: dict[str, Any], rendered: Path | None = None, keep_samples: bool = False) -> dict[str, Any]:
    """lm-eval's result dict as plain JSON: tensors/dtypes/functions as strings, memory addresses and
    the scratch task directory scrubbed (so two identical runs give identical configs)."""
    from lm_eval.utils import handle_non_serializable

    kept = {k: v for k, v in results.items() if keep_samples or k != "samples"}
    text = json.dumps(kept, default=handle_non_serializable, sort_keys=True)
    text = re.sub(r" at 0x[0-9a-fA-F]+>", ">", text)
    if rendered is not None:
        text = text.replace(str(rendered), RENDERED_MARK)
    return json.loads(text)


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) else None


def flat_result(raw: dict[str, Any], spec: TaskSpec, lm_task: str, source: str) -> dict[str, Any]:
    """The reported number of ``lm_task`` (a task or group) in ``raw``, as a fraction in [0, 1]."""
    res = raw["results"][lm_task]
    key = f"{spec.metric},none"
    if key not in res:
        raise KeyError(f"lm-eval returned no {key!r} for {lm_task!r}; got {sorted(res)}")
    n_samples = raw["n-samples"]
    if lm_task in n_samples:
        n = int(n_samples[lm_task]["effective"])
    else:  # a group (hub mmlu): every leaf task evaluated belongs to it
        n = sum(int(v["effective"]) for v in n_samples.values())
    return {
        "task": spec.key,
        "metric": spec.metric,
        "value": float(res[key]),
        "stderr": _number(res.get(f"{spec.metric}_stderr,none")),
        "n_samples": n,
        "num_fewshot": spec.num_fewshot,
        "source": source,
        "lm_eval_task": lm_task,
        "lm_eval_version": lm_eval_version(),
    }


def pooled_result(raw: dict[str, Any], spec: TaskSpec, lm_tasks: list[str], source: str) -> dict[str, Any]:
    """The size-weighted mean of ``spec.metric`` over the tasks ``lm_tasks`` of ``raw`` (lm-eval's group
    aggregate with ``weight_by_size``: acc = sum_i n_i acc_i / sum_i n_i), e.g. MMLU over some subjects on the
    hub; the stderr is lm-eval's pooled one."""
    from lm_eval.api.metrics import pooled_sample_stderr

    parts = [flat_result(raw, spec, t, source) for t in lm_tasks]
    sizes = [p["n_samples"] for p in parts]
    n = sum(sizes)
    stderrs = [p["stderr"] for p in parts]
    pooled = pooled_sample_stderr(stderrs, sizes) if all(e is not None for e in stderrs) and n > len(parts) else None
    return {**parts[0], "value": sum(p["value"] * k for p, k in zip(parts, sizes)) / n,
            "stderr": _number(pooled), "n_samples": n, "lm_eval_task": ",".join(lm_tasks)}


def mirror_mmlu_subjects(mirror: Path) -> list[str]:
    """The ``subject`` of each question of the mirror's MMLU test file, in file order."""
    return [row["subject"] for row in read_jsonl(mirror_file(Path(mirror), "mmlu/test"))]


def evaluate_task(
    model,
    tokenizer,
    task: str,
    *,
    mirror: Path | None,
    limit: int | None,
    batch_size: int,
    max_length: int | None,
    seed: int,
    device: "str | torch.device | None",
    log_samples: bool = False,
    subjects: "list[str] | None" = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate one benchmark of ``ALL_TASKS`` with lm-eval; returns ``(flat, raw)``.

    ``flat``: task, metric, value (fraction), stderr, n_samples, num_fewshot, source ("hub"/"mirror"),
    lm_eval_task, lm_eval_version.  ``raw``: lm-eval's result dict made JSON-safe (per-sample logs
    only with ``log_samples``).  ``limit``: the first ``limit`` documents (for the hub ``mmlu``
    group, per subject).  ``subjects`` (MMLU only): only the questions of these subjects, ``limit``
    then counting per subject on both sources (hub: lm-eval's ``mmlu_<subject>`` tasks, pooled by
    :func:`pooled_result`; mirror: lm-eval's ``samples``, the questions' indices).  All four lm-eval
    seeds are set to ``seed``: same model and arguments give the same numbers.  ``device``: the model
    is moved there first (None: left where it is).
    """
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    spec = _task_spec(task)
    if subjects is not None:
        if task != "mmlu":
            raise ValueError(f"`subjects` selects MMLU questions; task {task!r} has none (allowed: task 'mmlu')")
        if not subjects or unknown_subjects(subjects):
            raise ValueError(f"MMLU subjects {list(subjects)!r}: unknown or empty {unknown_subjects(subjects)}; "
                             "allowed: names of layerpuzzle.mmlu_subjects.MMLU_SUBJECTS")
    if mirror is None and spec.hub_task is None:
        raise ValueError(
            f"{task!r} has no stock lm-eval task to load from the hub; evaluate it on the local mirror "
            "(config data.mirror / $LAYERPUZZLE_DATA_MIRROR)"
        )
    if device is not None:
        model.to(device)
    lm = HFLM(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=int(batch_size),
        max_length=max_length,
        device=str(model.device),
    )

    def run(task_manager, lm_tasks: list[str], num_fewshot: int, samples=None) -> dict[str, Any]:
        return lm_eval.simple_evaluate(
            model=lm,
            tasks=lm_tasks,
            num_fewshot=num_fewshot,
            limit=limit if samples is None else None,
            samples=samples,
            task_manager=task_manager,
            log_samples=log_samples,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )

    if mirror is None:
        hub_tasks = [spec.hub_task] if subjects is None else [f"mmlu_{s}" for s in subjects]
        try:
            results = run(TaskManager(), hub_tasks, spec.num_fewshot)
        except ConnectionError as exc:  # datasets' offline / unreachable-hub error
            raise RuntimeError(
                f"lm-eval could not load {spec.hub_task!r} from the Hugging Face hub ({exc}). Offline? "
                "Evaluate on the local mirror instead (config data.mirror / $LAYERPUZZLE_DATA_MIRROR)."
            ) from exc
        raw = json_safe(results, keep_samples=log_samples)
        if subjects is not None:
            return pooled_result(raw, spec, hub_tasks, "hub"), raw
        return flat_result(raw, spec, spec.hub_task, "hub"), raw
    samples = None
    if subjects is not None:
        samples = {spec.mirror_task: subject_doc_indices(mirror_mmlu_subjects(Path(mirror)), subjects, limit)}
    with local_task_manager(Path(mirror)) as (task_manager, rendered):
        results = run(task_manager, [spec.mirror_task], spec.mirror_num_fewshot, samples)
        raw = json_safe(results, rendered, keep_samples=log_samples)
    return flat_result(raw, spec, spec.mirror_task, "mirror"), raw
