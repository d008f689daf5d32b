"""The LaCo paper's tables (Yang et al., "LaCo: Large Language Model Pruning via Layer Collapse"):
Tables 1/2/22 (benchmarks), 3 (perplexity), 4 (pruning time) and 5/20 (memory and speed), for the rows
Dense, LLM-Pruner, SliceGPT and LaCo of each model, with the paper's numbers beside ours.

An *entry* is one of our rows: ``{"model", "pruner", "checkpoint", "metrics" (metrics.json), "pruning"
(pruning.json, None for Dense), "efficiency" (efficiency.json or None)}``.

Benchmarks.  LaCo reports 14 OpenCompass sets; 8 have an lm-eval task here (:data:`BENCHMARKS`), the
Chinese sets (CMNLI, CHID, CMMLU, C3) and the generation sets (WSC_G, XSum) are left out.  Every average
is over the benchmarks a row has, stated as "k of 14".  LaCo's five categories (Table 2):

    Reasoning = {CMNLI, HellaSwag, PIQA}   Language = {CHID, WSC_P, WSC_G}   Knowledge = {CSQA, BoolQ}
    Examination = {MMLU, CMMLU}            Understanding = {Race-H, Race-M, XSum, C3}

    Avg  = mean of the row's scores;  Per. = mean over its benchmarks of 100 · score / Dense score (Table 22)

(checked on the paper's own numbers: Table 2 = means of Table 1 / Table 22 rows, tests/test_laco_tables.py).

Beside the paper.  A model is compared with the same LaCo model when its ``paper_name`` is one of LaCo's
(LLaMA-2-7B → Llama2-7B, LLaMA-2-13B → Llama2-13B): columns ``c paper`` and ``c diff`` (= ours − paper; the
audit checks them).  Any other model (the embedded SmolLM2) is shown beside ``laco_tables.paper_model`` for
reference only: columns ``c [<paper model>]``, no difference (different models are not a reproduction).
Our Dense is compared with the paper's ``Dense*`` (the authors' re-run that Table 22 divides by).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from .paper import PAPER_DIR

LACO_DIR = PAPER_DIR / "laco_mka"

# LaCo's 14 benchmarks (Table 1 order): (CSV column, printed header, our metrics.json task or None)
LACO_BENCHMARKS: tuple[tuple[str, str, str | None], ...] = (
    ("cmnli", "CMNLI", None), ("hellaswag", "HellaSwag", "hellaswag"), ("piqa", "PIQA", "piqa"),
    ("chid", "CHID", None), ("wsc_p", "WSC_P", "wsc"), ("wsc_g", "WSC_G", None),
    ("csqa", "CSQA", "commonsense_qa"), ("boolq", "BoolQ", "boolq"), ("mmlu", "MMLU", "mmlu"),
    ("cmmlu", "CMMLU", None), ("race_h", "Race-H", "race_high"), ("race_m", "Race-M", "race_middle"),
    ("xsum", "XSum", None), ("c3", "C3", None),
)
N_BENCHMARKS = len(LACO_BENCHMARKS)
# the ones this project evaluates: CSV column -> (header, task)
BENCHMARKS: dict[str, tuple[str, str]] = {c: (h, t) for c, h, t in LACO_BENCHMARKS if t is not None}
HEADERS: dict[str, str] = {c: h for c, h, _ in LACO_BENCHMARKS}
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Reasoning": ("cmnli", "hellaswag", "piqa"), "Language": ("chid", "wsc_p", "wsc_g"),
    "Knowledge": ("csqa", "boolq"), "Examination": ("mmlu", "cmmlu"),
    "Understanding": ("race_h", "race_m", "xsum", "c3"),
}
PAPER_MODELS = ("Llama2-7B", "Llama2-13B", "Baichuan2-7B", "Baichuan2-13B")
# the project's paper_name (CoMe's spelling) -> LaCo's
PAPER_NAME_TO_LACO = {"LLaMA-2-7B": "Llama2-7B", "LLaMA-2-13B": "Llama2-13B"}
PRUNERS = ("Dense", "LLM-Pruner", "SliceGPT", "LaCo")
KEYS = ("Model", "Pruner")

CSV = {"table01": "laco_table01_main.csv", "table02": "laco_table02_averages.csv",
       "table22": "laco_table22_pct_of_dense.csv", "table03": "laco_table03_ppl.csv",
       "table04": "laco_table04_pruning_time.csv", "table20": "laco_table20_memory_speed.csv"}


def load_laco_paper(name: str, directory: str | Path | None = None) -> pd.DataFrame:
    """One of the LaCo paper's tables shipped in resources/paper/laco_mka (``name`` a key of :data:`CSV`)."""
    return pd.read_csv(Path(directory or LACO_DIR) / CSV[name])


@dataclass(frozen=True)
class PaperMatch:
    """The LaCo paper model a model of ours is shown beside, and whether it is the same model."""

    model: str
    same: bool


def paper_match(paper_name: str | None, reference: str = "Llama2-7B") -> PaperMatch:
    laco = PAPER_NAME_TO_LACO.get(paper_name or "", paper_name if paper_name in PAPER_MODELS else None)
    return PaperMatch(laco, True) if laco else PaperMatch(reference, False)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def benchmark_scores(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """CSV column -> score in percent, for the LaCo benchmarks the record has."""
    tasks = (metrics or {}).get("tasks") or {}
    out = {}
    for col, (_, task) in BENCHMARKS.items():
        value = (tasks.get(task) or {}).get("value")
        if value is not None and math.isfinite(float(value)):
            out[col] = 100.0 * float(value)
    return out


def _ratio_and_layers(e: Mapping[str, Any]) -> tuple[float, int | None]:
    m = e.get("metrics") or {}
    dense_layers, removed = m.get("dense_layers"), m.get("removed_layers") or 0
    return float(m.get("sparsity_pct") or 0.0), (None if dense_layers is None else int(dense_layers) - int(removed))


def _dense_of(entries: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {e["model"]: e for e in entries if e["pruner"] == "Dense"}


def _sorted(entries: Sequence[Mapping[str, Any]], model_order: Sequence[str]) -> list[Mapping[str, Any]]:
    order = list(model_order) or list(dict.fromkeys(e["model"] for e in entries))
    return sorted(entries, key=lambda e: (order.index(e["model"]) if e["model"] in order else len(order),
                                         PRUNERS.index(e["pruner"]) if e["pruner"] in PRUNERS else len(PRUNERS)))


def over(k: int) -> str:
    return f"{k} of {N_BENCHMARKS}"


# ------------------------------------------------------------------ Tables 1, 2, 22
def table1(entries: Sequence[Mapping[str, Any]], model_order: Sequence[str] = ()) -> pd.DataFrame:
    """LaCo Table 1: Ratio (%), Layers, the available benchmarks, their Avg and "Avg over" (k of 14)."""
    rows = []
    for e in _sorted(entries, model_order):
        scores = benchmark_scores(e.get("metrics"))
        ratio, layers = _ratio_and_layers(e)
        row = {"Model": e["model"], "Pruner": e["pruner"], "Ratio (%)": ratio, "Layers": layers}
        row |= {h: scores.get(c) for c, (h, _) in BENCHMARKS.items()}
        row |= {"Avg": _mean(list(scores.values())), "Avg over": over(len(scores))}
        rows.append(row)
    return pd.DataFrame(rows, columns=[*KEYS, "Ratio (%)", "Layers", *(h for h, _ in BENCHMARKS.values()), "Avg",
                                       "Avg over"])


def pct_of_dense(scores: Mapping[str, float], dense: Mapping[str, float]) -> dict[str, float]:
    """Table 22: 100 · score / Dense score per benchmark both have (Dense score > 0)."""
    return {c: 100.0 * v / dense[c] for c, v in scores.items() if dense.get(c)}


def table22(entries: Sequence[Mapping[str, Any]], model_order: Sequence[str] = ()) -> pd.DataFrame:
    """LaCo Table 22: each pruned row's scores in % of its model's Dense row."""
    dense = _dense_of(entries)
    rows = []
    for e in _sorted(entries, model_order):
        if e["pruner"] == "Dense":
            continue
        d = benchmark_scores((dense.get(e["model"]) or {}).get("metrics"))
        pct = pct_of_dense(benchmark_scores(e.get("metrics")), d)
        rows.append({"Model": e["model"], "Pruner": e["pruner"], **{h: pct.get(c) for c, (h, _) in BENCHMARKS.items()}})
    return pd.DataFrame(rows, columns=[*KEYS, *(h for h, _ in BENCHMARKS.values())])


def averages(scores: Mapping[str, float], dense: Mapping[str, float] | None) -> dict[str, Any]:
    """Table 2's cells of one row from its scores (CSV column -> %) and its Dense row's."""
    pct = pct_of_dense(scores, dense) if dense is not None else {}
    out: dict[str, Any] = {"Avg": _mean(list(scores.values())), "Per. (%)": _mean(list(pct.values())) if pct else None}
    for cat, members in CATEGORIES.items():
        out[cat] = _mean([scores[c] for c in members if c in scores])
    out["Avg over"] = over(len(scores))
    return out


def table2(entries: Sequence[Mapping[str, Any]], model_order: Sequence[str] = ()) -> pd.DataFrame:
    """LaCo Table 2: Avg, Per. (% of Dense, the mean of the Table 22 row) and the five category averages."""
    dense = _dense_of(entries)
    rows = []
    for e in _sorted(entries, model_order):
        d = benchmark_scores((dense.get(e["model"]) or {}).get("metrics")) if e["model"] in dense else None
        rows.append({"Model": e["model"], "Pruner": e["pruner"], **averages(benchmark_scores(e.get("metrics")), d)})
    return pd.DataFrame(rows, columns=[*KEYS, "Avg", "Per. (%)", *CATEGORIES, "Avg over"])


# ------------------------------------------------------------------ Table 3 (PPL), Table 4 (time)
def table3(entries: Sequence[Mapping[str, Any]], model_order: Sequence[str] = ()) -> pd.DataFrame:
    """LaCo Table 3: WikiText-2 (and C4) perplexity and the WikiText-2 PPL relative to Dense."""
    dense = _dense_of(entries)
    rows = []
    for e in _sorted(entries, model_order):
        ppl = {k: ((e.get("metrics") or {}).get("perplexity") or {}).get(k, {}).get("ppl") for k in ("wikitext2", "c4")}
        d = (((dense.get(e["model"]) or {}).get("metrics") or {}).get("perplexity") or {}).get("wikitext2", {}).get("ppl")
        rows.append({"Model": e["model"], "Pruner": e["pruner"], "Ratio (%)": _ratio_and_layers(e)[0],
                     "Wiki-2": ppl["wikitext2"], "C4": ppl["c4"],
                     "Wiki-2 / Dense": ppl["wikitext2"] / d if ppl["wikitext2"] is not None and d else None})
    return pd.DataFrame(rows, columns=[*KEYS, "Ratio (%)", "Wiki-2", "C4", "Wiki-2 / Dense"])


def table4(entries: Sequence[Mapping[str, Any]], model_order: Sequence[str] = ()) -> pd.DataFrame:
    """LaCo Table 4: each method's pruning time (``pruning_seconds`` of its pruning.json: the computation only)
    and the time relative to LaCo's on the same model."""
    pruned = [e for e in _sorted(entries, model_order) if e["pruner"] != "Dense"]
    laco = {e["model"]: (e.get("pruning") or {}).get("pruning_seconds") for e in pruned if e["pruner"] == "LaCo"}
    rows = []
    for e in pruned:
        s = (e.get("pruning") or {}).get("pruning_seconds")
        base = laco.get(e["model"])
        rows.append({"Model": e["model"], "Pruner": e["pruner"], "Ratio (%)": _ratio_and_layers(e)[0],
                     "Pruning time (s)": s, "Time / LaCo": s / base if s is not None and base else None})
    return pd.DataFrame(rows, columns=[*KEYS, "Ratio (%)", "Pruning time (s)", "Time / LaCo"])


# ------------------------------------------------------------------ Tables 5, 20 (memory, speed)
def table20(entries: Sequence[Mapping[str, Any]], model_order: Sequence[str] = ()) -> pd.DataFrame:
    """LaCo Tables 5/20: memory (MiB) and generation tokens/s, as ratios to Dense measured the same way;
    ``Slower`` = slower than Dense (LaCo's ↓). ``Device`` says CPU or CUDA (CPU memory = parameters + peak
    RSS rise, docs/efficiency.md)."""
    dense = _dense_of(entries)
    rows = []
    for e in _sorted(entries, model_order):
        r = e.get("efficiency") or {}
        d = (dense.get(e["model"]) or {}).get("efficiency") or {}
        ok = bool(r) and bool(d) and r.get("device") == d.get("device")
        rows.append({"Model": e["model"], "Pruner": e["pruner"], "Device": r.get("device"), "dtype": r.get("dtype"),
                     "Memory (MiB)": r.get("memory_mib"), "Tokens/s": r.get("tokens_per_s"),
                     "Memory / Dense": r["memory_bytes"] / d["memory_bytes"] if ok and d.get("memory_bytes") else None,
                     "Speed / Dense": r["tokens_per_s"] / d["tokens_per_s"] if ok and d.get("tokens_per_s") else None,
                     "Slower": ("↓" if r["tokens_per_s"] < d["tokens_per_s"] else "")
                     if ok and e["pruner"] != "Dense" else ""})
    return pd.DataFrame(rows, columns=[*KEYS, "Device", "dtype", "Memory (MiB)", "Tokens/s", "Memory / Dense",
                                       "Speed / Dense", "Slower"])


# ------------------------------------------------------------------ the paper's rows in our layout
def _paper_pruner(pruner: str) -> str:
    return "Dense*" if pruner == "Dense" else pruner


def paper_rows(name: str, paper_dir: str | Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """(paper model, pruner) -> {our header: the paper's value} of one LaCo table (our columns only)."""
    df = load_laco_paper(name, paper_dir)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for _, r in df.iterrows():
        cells: dict[str, Any] = {}
        if name == "table01":
            scores = {c: float(r[c]) for c in BENCHMARKS if pd.notna(r[c])}
            cells = {h: scores.get(c) for c, (h, _) in BENCHMARKS.items()}
            cells |= {"Ratio (%)": float(r["ratio_pct"]), "Layers": int(r["layers"]),
                      "Avg": _mean(list(scores.values()))}
        elif name == "table22":
            cells = {h: float(r[c]) for c, (h, _) in BENCHMARKS.items() if pd.notna(r[c])}
        elif name == "table03":
            cells = {"Wiki-2": float(r["ppl"]), "Ratio (%)": float(r["sparsity_pct"])}
        elif name == "table04":
            cells = {"Pruning time (s)": float(r["pruning_time_s"])}
        elif name == "table20":
            cells = {"Memory (MiB)": float(r["memory_mb"]), "Tokens/s": float(r["inference_tokens_per_s"])}
        out[(r["model"], r["pruner"])] = cells
    if name == "table03":  # PPL relative to the paper's Dense
        for (m, p), cells in out.items():
            d = out.get((m, "Dense"), {}).get("Wiki-2")
            cells["Wiki-2 / Dense"] = cells["Wiki-2"] / d if d else None
    if name == "table04":
        for (m, p), cells in out.items():
            base = out.get((m, "LaCo"), {}).get("Pruning time (s)")
            cells["Time / LaCo"] = cells["Pruning time (s)"] / base if base else None
    if name == "table20":
        for (m, p), cells in out.items():
            d = out.get((m, "Dense"))
            cells["Memory / Dense"] = cells["Memory (MiB)"] / d["Memory (MiB)"] if d else None
            cells["Speed / Dense"] = cells["Tokens/s"] / d["Tokens/s"] if d else None
    return out


def paper_table2_rows(paper_dir: str | Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Table 2 recomputed on the benchmarks we have (from the paper's Tables 1 and 22), beside the printed
    14-benchmark Avg / Per. (``Avg (14)``, ``Per. (14)``)."""
    t1 = load_laco_paper("table01", paper_dir)
    t2 = load_laco_paper("table02", paper_dir).set_index(["model", "pruner"])
    out = {}
    for _, r in t1.iterrows():
        scores = {c: float(r[c]) for c in BENCHMARKS if pd.notna(r[c])}
        dense_row = t1[(t1.model == r["model"]) & (t1.pruner == "Dense*")].iloc[0]
        dense = {c: float(dense_row[c]) for c in BENCHMARKS if pd.notna(dense_row[c])}
        cells = averages(scores, dense)
        cells.pop("Avg over")
        printed = t2.loc[(r["model"], r["pruner"])] if (r["model"], r["pruner"]) in t2.index else None
        cells["Avg (14)"] = None if printed is None else float(printed["avg"])
        cells["Per. (14) (%)"] = None if printed is None else float(printed["per_pct_of_dense"])
        out[(r["model"], r["pruner"])] = cells
    return out


def beside_paper(ours: pd.DataFrame, paper: Mapping[tuple[str, str], Mapping[str, Any]],
                 matches: Mapping[str, PaperMatch], columns: Sequence[str],
                 extra_paper: Sequence[str] = ()) -> pd.DataFrame:
    """Our table with the paper's row of the matched paper model and pruner beside each of our rows.

    Same model: ``c paper`` and ``c diff`` (ours − paper); another model: ``c [<paper model>]`` only.
    ``extra_paper`` columns exist in the paper only (e.g. the printed 14-benchmark average).
    """
    rows = []
    for _, r in ours.iterrows():
        m = matches.get(r["Model"]) or PaperMatch(PAPER_MODELS[0], False)
        p = paper.get((m.model, _paper_pruner(r["Pruner"]))) or {}
        row = {"Model": r["Model"], "Pruner": r["Pruner"], "Paper model": m.model,
               "Compared": "same model" if m.same else "reference only (another model)"}
        for c in columns:
            theirs = p.get(c)
            row[c] = r[c]
            if m.same:
                row[f"{c} paper"] = theirs
                row[f"{c} diff"] = (float(r[c]) - theirs if theirs is not None and r[c] is not None
                                    and not pd.isna(r[c]) else None)
            else:
                row[f"{c} [{m.model}]"] = theirs
        for c in extra_paper:
            row[f"{c} [{m.model}]"] = p.get(c)
        rows.append(row)
    df = pd.DataFrame(rows)
    # a column set that is the same whatever the rows: reference columns after the per-column triples
    ordered = [*KEYS, "Paper model", "Compared"]
    for c in columns:
        ordered += [x for x in (c, f"{c} paper", f"{c} diff") if x in df.columns]
    ordered += [x for x in df.columns if x not in ordered]
    return df[ordered] if len(df) else pd.DataFrame(columns=[*KEYS, "Paper model", "Compared", *columns])
