"""The results table in the layout of paper Tables 8–10, from ``metrics.json`` records.

A record (one evaluated checkpoint, written by the workflow) has the keys
``model, checkpoint, method, variant, target_pct, removed_layers, sparsity_pct``,
``tasks: {lm-eval task: {"metric", "value" (fraction), "stderr", "n_samples", "num_fewshot"}}``
and ``perplexity: {"c4" | "wikitext2": {"ppl", "n_windows", "seqlen"}}``.

Columns: Model, Sparsity (%), Method, the 7 task scores (percent), Avg, RPT,
C4, Wiki-2, Note.  Avg and RPT (:mod:`.scores`) need all 7 tasks, and RPT the
same model's Dense row; otherwise they are left empty and Note says why.
Values are rounded to 2 decimals after Avg and RPT are computed.

After Note come the noise columns (:mod:`.scores`): ``Avg SE`` and ``RPT SE``
(propagated from lm-eval's per-task standard errors) and ``vs Dense``:
``within noise`` when both Avg and RPT are within 2 SE of the Dense row,
else ``below Dense`` / ``above Dense`` (by Avg); empty when an SE is missing.
With few documents per task (the embedded default evaluates 20) most rows are
within noise, and their ranking by Avg or RPT means nothing.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..methods import registry
from .columns import PPL_COLUMNS, SCORE_COLUMNS, TASK_COLUMNS
from .scores import (average, average_stderr, relative_performance, relative_performance_stderr,
                     within_noise)

# Dense, then the registered methods in table order (the paper's Tables 8–10 first: the method registry);
# display names the registry does not know follow alphabetically.
METHOD_ORDER: tuple[str, ...] = registry.method_order()

NOISE_COLUMNS: tuple[str, ...] = ("Avg SE", "RPT SE", "vs Dense")
TABLE_COLUMNS: tuple[str, ...] = ("Model", "Sparsity (%)", "Method", *SCORE_COLUMNS, "Note", *NOISE_COLUMNS)


def method_label(method: str, variant: str = "") -> str:
    """The Method cell: ``"CoMe"`` or, with a variant, ``"CoMe (variant)"``."""
    return f"{method} ({variant})" if variant else method


def method_rank(method: str) -> tuple[int, str]:
    """Sort key: the paper's order first, then other methods alphabetically."""
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


def task_scores(record: Mapping[str, Any]) -> dict[str, float | None]:
    """Printed header -> score in percent (None when the task is missing)."""
    tasks = record.get("tasks") or {}
    return {
        header: None if tasks.get(key) is None or tasks[key].get("value") is None else 100.0 * float(tasks[key]["value"])
        for key, header in TASK_COLUMNS.items()
    }


def task_stderrs(record: Mapping[str, Any]) -> dict[str, float | None]:
    """Printed header -> lm-eval's standard error of the score, in percent (None when missing)."""
    tasks = record.get("tasks") or {}
    out: dict[str, float | None] = {}
    for key, header in TASK_COLUMNS.items():
        se = (tasks.get(key) or {}).get("stderr")
        out[header] = None if se is None or not math.isfinite(float(se)) else 100.0 * float(se)
    return out


def noise_cells(record: Mapping[str, Any], dense: Mapping[str, Any] | None) -> dict[str, Any]:
    """``Avg SE``, ``RPT SE`` and ``vs Dense`` of one row (empty where a score or SE is missing)."""
    cells: dict[str, Any] = {"Avg SE": None, "RPT SE": None, "vs Dense": ""}
    scores, ses = list(task_scores(record).values()), list(task_stderrs(record).values())
    if any(v is None for v in scores + ses):
        return cells
    cells["Avg SE"] = average_stderr(ses)
    if dense is None or record.get("method") == "Dense":
        return cells
    d_scores, d_ses = list(task_scores(dense).values()), list(task_stderrs(dense).values())
    if any(v is None for v in d_scores + d_ses) or any(v == 0 for v in d_scores):
        return cells
    rpt_se = relative_performance_stderr(scores, ses, d_scores, d_ses)
    cells["RPT SE"] = rpt_se
    d_avg = average(scores) - average(d_scores)
    avg_noise = within_noise(d_avg, (cells["Avg SE"] ** 2 + average_stderr(d_ses) ** 2) ** 0.5)
    rpt_noise = within_noise(relative_performance(scores, d_scores) - 100.0, rpt_se)
    cells["vs Dense"] = "within noise" if avg_noise and rpt_noise else ("below Dense" if d_avg < 0 else "above Dense")
    return cells


def perplexities(record: Mapping[str, Any]) -> dict[str, float | None]:
    ppl = record.get("perplexity") or {}
    return {
        header: None if ppl.get(key) is None or ppl[key].get("ppl") is None else float(ppl[key]["ppl"])
        for key, header in PPL_COLUMNS.items()
    }


def dense_records(records: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Model -> its Dense record (the one without a variant if there are several)."""
    dense: dict[str, Mapping[str, Any]] = {}
    for r in sorted(records, key=lambda r: r.get("variant") or ""):
        if r["method"] == "Dense":
            dense.setdefault(r["model"], r)
    return dense


def result_row(record: Mapping[str, Any], dense: Mapping[str, Any] | None) -> dict[str, Any]:
    """One table row (unrounded) with Avg, RPT and the Note explaining any empty Avg/RPT."""
    scores = task_scores(record)
    missing = [h for h, v in scores.items() if v is None]
    notes = []
    avg = rpt = None
    if missing:
        notes.append(f"missing {', '.join(missing)}: no Avg/RPT")
    else:
        avg = average(list(scores.values()))
        dense_scores = task_scores(dense) if dense is not None else None
        if dense_scores is None:
            notes.append("no Dense row: no RPT")
        elif any(v is None for v in dense_scores.values()):
            notes.append("Dense row incomplete: no RPT")
        elif any(v == 0 for v in dense_scores.values()):
            notes.append("a Dense score is 0: no RPT")
        else:
            rpt = relative_performance(list(scores.values()), list(dense_scores.values()))
    ppl = perplexities(record)
    notes += [f"{h} PPL is {v}" for h, v in ppl.items() if v is not None and not math.isfinite(v)]
    return {
        "Model": record["model"],
        "Sparsity (%)": float(record.get("sparsity_pct") or 0.0),
        "Method": method_label(record["method"], record.get("variant") or ""),
        **scores,
        "Avg": avg,
        "RPT": rpt,
        **ppl,
        "Note": "; ".join(notes),
        **noise_cells(record, dense),
        "#Removed": int(record.get("removed_layers") or 0),
        "Target (%)": _target_cell(record),
        "Base method": record["method"],
        "_variant": record.get("variant") or "",
    }


def _target_cell(record: Mapping[str, Any]) -> float | int:
    """``Target (%)``: the sparsity target in percent; for a layer-count target (``n<k>``: target_pct null,
    target_layers k) the sparsity its k layers give, so the row joins the paper at that sparsity."""
    if record.get("target_pct") is None and record.get("target_layers") is not None:
        return _percent(round(float(record.get("sparsity_pct") or 0), 2))
    return _percent(record.get("target_pct") or 0)


def _percent(value: float) -> float | int:
    """A target in percent: an int when whole (30), else as recorded (29.9, a target that is not a whole percent)."""
    return int(value) if float(value).is_integer() else float(value)


def results_table(
    records: Iterable[Mapping[str, Any]],
    model_order: Sequence[str] | None = None,
    with_keys: bool = False,
) -> pd.DataFrame:
    """Tables 8–10 layout for ``records`` (metrics.json dicts), sorted by model, sparsity, method.

    Models follow ``model_order`` (others after it, alphabetically).
    ``with_keys`` adds the bookkeeping columns ``#Removed``, ``Target (%)`` and
    ``Base method`` (the method without its variant), used to join the paper.
    """
    records = list(records)
    dense = dense_records(records)
    rows = [result_row(r, dense.get(r["model"])) for r in records]
    order = list(model_order or [])
    rows.sort(
        key=lambda row: (
            (order.index(row["Model"]), "") if row["Model"] in order else (len(order), row["Model"]),
            row["Sparsity (%)"],
            method_rank(row["Base method"]),
            row["_variant"],
        )
    )
    columns = list(TABLE_COLUMNS)
    if with_keys:
        columns[2:2] = ["#Removed", "Target (%)"]
        columns.insert(columns.index("Method") + 1, "Base method")
    df = pd.DataFrame(rows, columns=columns)
    numeric = ["Sparsity (%)", *SCORE_COLUMNS, "Avg SE", "RPT SE"]
    df[numeric] = df[numeric].astype(float).round(2)
    return df.reset_index(drop=True)
