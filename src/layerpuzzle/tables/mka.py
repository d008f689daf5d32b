"""MKA's tables and curves (Liu et al., "Pruning via Merging", 2024: Tables 1–4, Figs. 2 and 6), ours beside
the paper's.

**Compression ratio.** MKA reports its own compression ratio (footnote 3 of the paper)::

    CR = (L − L_kept / Q) / L        Q = 16 / (weight bits) for a quantized checkpoint, 1 otherwise

``L`` the dense model's decoder layers, ``L_kept`` the layers kept, embeddings ignored
(:func:`layerpuzzle.sparsity.compression_ratio`). The paper uses ``Q = 4`` ("with int4") for all three
quantizers of its Table 1; here ``Q`` follows the scheme's weight bits (:func:`quant_factor`), so a W8A8
SmoothQuant checkpoint has ``Q = 2`` (the note says so) and a W4A8 one ``Q = 4``. SparseGPT at "CR = x" zeroes
the fraction x of every decoder Linear's weights (the paper is silent; our reading, docs/tables.md), so its CR
is x. Every table shows the parameter sparsity (fraction of all parameters removed or zeroed, docs/sparsity.md)
beside CR.

A *point* is one cell source: a dict with ``model``, ``method`` (display name: ``Vanilla``, ``ShortGPT``,
``MKA``, ``Reverse``, ``SparseGPT``), ``layers_removed`` (k), ``scheme`` (a quantization / sparsification slug
or None) and ``record`` (the checkpoint's ``metrics.json``, or None when it is not built yet). The rules
(``rules/mka_tables.smk``) build the points from :class:`layerpuzzle.plan.Plan`; the functions here are pure.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd

from ..methods.quantize.schemes import Scheme, parse_scheme
from ..sparsity import ArchSpec, compression_ratio, layer_params, sparsity, total_params

# MKA Table 1: the quantizers' names as the paper prints them
QUANT_NAMES = {"smoothquant": "SmoothQuant", "gptq": "GPTQ", "awq": "AWQ", "sparsegpt": "SparseGPT"}
# MKA Table 2's benchmarks: metrics.json task key -> (printed header, column of the paper CSV)
TABLE2_TASKS: dict[str, tuple[str, str]] = {
    "mmlu": ("MMLU", "mmlu"),
    "piqa": ("PIQA", "piqa"),
    "hellaswag": ("HellaSwag", "hellaswag"),
    "race_high": ("RACE-H", "race_h"),
    "boolq": ("BoolQ", "boolq"),
}
# MKA Fig. 6's subjects (MMLU subject names as in the data)
FIG6_SUBJECTS = ("college_medicine", "college_biology", "high_school_psychology", "college_physics")


def quant_factor(scheme: str | Scheme | None) -> float:
    """MKA's ``Q``: ``16 / weight bits`` for a quantizing scheme (``gptq-w4a16-g64`` -> 4,
    ``smoothquant-w8a8-a0.5`` -> 2), 1 for none or a sparsifying one (``sparsegpt-50``)."""
    if scheme is None:
        return 1.0
    s = scheme if isinstance(scheme, Scheme) else parse_scheme(scheme)
    return 16.0 / s.weight_bits if s.quantizes else 1.0


def mka_cr_pct(spec: ArchSpec, layers_removed: int, scheme: str | None = None) -> float:
    """MKA's CR in percent of a checkpoint with ``layers_removed`` layers gone, then ``scheme`` applied:
    ``100·(L − (L − k)/Q)/L`` (footnote 3); a SparseGPT scheme at fraction x (on the dense model) gives
    ``100·x`` (its zeroed decoder weights, our reading)."""
    if scheme is not None:
        s = parse_scheme(scheme)
        if not s.quantizes:
            if layers_removed:
                raise ValueError(f"scheme {scheme!r} on a layer-pruned checkpoint has no MKA compression ratio")
            return 100.0 * s.sparsity
    L = spec.num_hidden_layers
    return 100.0 * compression_ratio(L, L - layers_removed, quant_factor(scheme))


def param_sparsity_pct(spec: ArchSpec, layers_removed: int, scheme: str | None = None) -> float:
    """Fraction of all parameters (embeddings included) removed or zeroed, in percent: ``k·P_layer/P_total``
    for k layers removed (docs/sparsity.md); a SparseGPT scheme at fraction x zeroes x of every decoder
    Linear weight: ``x·L'·(P_layer − 2h)/P_total`` over the ``L' = L − k`` layers left (the two RMSNorms of a
    layer, 2h parameters, are not Linear weights). Quantization removes no parameter."""
    pct = 100.0 * sparsity(spec, layers_removed)
    if scheme is not None:
        s = parse_scheme(scheme)
        if not s.quantizes:
            linear = (spec.num_hidden_layers - layers_removed) * (layer_params(spec) - 2 * spec.hidden_size)
            pct += 100.0 * s.sparsity * linear / total_params(spec)
    return pct


def task_pct(record: Mapping[str, Any] | None, task: str) -> float | None:
    """A task's score in percent from a metrics.json record (None when missing)."""
    entry = ((record or {}).get("tasks") or {}).get(task)
    if not entry or entry.get("value") is None:
        return None
    return 100.0 * float(entry["value"])


def _diff(ours: float | None, theirs: Any) -> float | None:
    if ours is None or theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return None
    return round(ours - float(theirs), 2)


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def quant_name(scheme: str | None) -> str:
    """``GPTQ`` for ``gptq-w4a16-g64``; ``none`` without a scheme."""
    return "none" if scheme is None else QUANT_NAMES[parse_scheme(scheme).kind]


# ---------------------------------------------------------------------------- Table 1
TABLE1_COLUMNS = ("Model", "Method", "Quantization", "Scheme", "Layers kept", "Sparsity (%)", "CR (%)", "MMLU",
                  "Paper model", "Paper layers kept", "Paper CR (%)", "Paper MMLU", "Diff", "Note")


def table1(points: Sequence[Mapping[str, Any]], archs: Mapping[str, ArchSpec], paper: pd.DataFrame,
           paper_model: str = "Llama3-8B") -> pd.DataFrame:
    """MKA Table 1: ShortGPT and MKA, each alone (``none``) and under SmoothQuant / GPTQ / AWQ, MMLU; the
    paper's row of ``paper_model`` (a point's own ``paper_model`` first) with the same layer method and quantizer
    beside ours (``Diff`` = ours − paper; the paper's depth is its own: 18 of 32 layers kept on Llama3-8B)."""
    rows = []
    for p in points:
        pm = p.get("paper_model") or paper_model
        spec = archs[p["model"]]
        k, scheme = int(p["layers_removed"]), p.get("scheme")
        method = p["method"]
        q = quant_name(scheme)
        ours = task_pct(p.get("record"), "mmlu")
        sel = paper[(paper["model"] == pm) & (paper["layer_method"] == method)]
        if method == "Vanilla":
            sel = sel.head(1)
        else:
            sel = sel[sel["quant_method"].fillna("") == (q if scheme else "")]
        theirs = sel.iloc[0] if len(sel) else None
        notes = []
        if scheme and quant_factor(scheme) != 4:
            notes.append(f"Q = {quant_factor(scheme):g} ({parse_scheme(scheme).weight_bits}-bit weights; the paper "
                         f"uses Q = 4 for every quantizer)")
        if p.get("record") is None:
            notes.append("not evaluated")
        rows.append({
            "Model": p["model"], "Method": method, "Quantization": q, "Scheme": scheme or "",
            "Layers kept": f"{spec.num_hidden_layers - k}/{spec.num_hidden_layers}",
            "Sparsity (%)": _r(param_sparsity_pct(spec, k, scheme)), "CR (%)": _r(mka_cr_pct(spec, k, scheme)),
            "MMLU": _r(ours),
            "Paper model": pm if theirs is not None else "",
            "Paper layers kept": (f"{int(theirs['retained_layers'])}/{int(paper[paper['model'] == pm]['retained_layers'].max())}"
                                  if theirs is not None else ""),
            "Paper CR (%)": _num(theirs["compression_ratio_pct"]) if theirs is not None else None,
            "Paper MMLU": _num(theirs["mmlu_acc"]) if theirs is not None else None,
            "Diff": _diff(_r(ours), theirs["mmlu_acc"] if theirs is not None else None),
            "Note": "; ".join(notes),
        })
    return pd.DataFrame(rows, columns=list(TABLE1_COLUMNS))


# ---------------------------------------------------------------------------- Table 2
def table2(points: Sequence[Mapping[str, Any]], archs: Mapping[str, ArchSpec], paper: pd.DataFrame,
           tasks: Sequence[str] = tuple(TABLE2_TASKS)) -> pd.DataFrame:
    """MKA Table 2: per compression level (``level`` = the point's index into the paper's four CRs, 34.375 …
    43.75 %), Vanilla, SparseGPT, ShortGPT and MKA on MMLU, PIQA, HellaSwag, RACE-H and BoolQ; the paper's cell
    (``Paper <task>``) beside each of ours. A point carries ``level`` and ``paper_cr`` (the paper's CR in
    percent of that level)."""
    rows = []
    for p in points:
        spec = archs[p["model"]]
        k, scheme = int(p["layers_removed"]), p.get("scheme")
        method = p["method"]
        sel = paper[(paper["method"] == method) & ((paper["compression_ratio_pct"] - float(p["paper_cr"])).abs() < 1e-6)]
        theirs = sel.iloc[0] if len(sel) else None
        row = {"Model": p["model"], "Level": int(p["level"]) + 1, "Method": method, "Scheme": scheme or "",
               "Layers kept": f"{spec.num_hidden_layers - k}/{spec.num_hidden_layers}",
               "Sparsity (%)": _r(param_sparsity_pct(spec, k, scheme)),
               "CR (%)": _r(0.0 if method == "Vanilla" else mka_cr_pct(spec, k, scheme)),
               "Paper CR (%)": float(p["paper_cr"])}
        missing = []
        for task in tasks:
            header, col = TABLE2_TASKS[task]
            ours = _r(task_pct(p.get("record"), task))
            if ours is None and p.get("record") is not None:
                missing.append(header)
            row[header] = ours
            row[f"Paper {header}"] = _num(theirs[col]) if theirs is not None else None
        note = []
        if p.get("record") is None:
            note.append("not evaluated")
        elif missing:
            note.append(f"not evaluated on {', '.join(missing)} (add them to evaluation.tasks)")
        if theirs is not None and isinstance(theirs.get("note"), str) and theirs["note"]:
            note.append("paper: " + theirs["note"].split(";")[0])
        row["Note"] = "; ".join(note)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- Tables 3-4 / Fig. 2
def curve_table(points: Sequence[Mapping[str, Any]], archs: Mapping[str, ArchSpec], paper: pd.DataFrame,
                paper_model: str = "Llama3-8B") -> pd.DataFrame:
    """MKA Tables 3–4 (Fig. 2), long format: MMLU after removing k layers per method, with the paper's value of
    ``paper_model`` at the same k (its CR is k/32 or k/40, ours k/L: compared by layers removed)."""
    rows = []
    for p in points:
        pname = p.get("paper_model") or paper_model
        pm = paper[paper["model"] == pname]
        spec = archs[p["model"]]
        k, method = int(p["layers_removed"]), p["method"]
        sel = pm[(pm["method"] == method) & (pm["layers_removed"] == k)]
        if method == "Vanilla":
            sel = pm[pm["layers_removed"] == 0].head(1)
        theirs = _num(sel.iloc[0]["mmlu_acc"]) if len(sel) else None
        ours = _r(task_pct(p.get("record"), "mmlu"))
        rows.append({"Model": p["model"], "Method": method, "Layers removed": k,
                     "Sparsity (%)": _r(param_sparsity_pct(spec, k)), "CR (%)": _r(mka_cr_pct(spec, k)),
                     "MMLU": ours, "Paper model": pname,
                     "Paper CR (%)": _r(100.0 * float(sel.iloc[0]["compression_ratio"])) if len(sel) else None,
                     "Paper MMLU": theirs, "Diff": _diff(ours, theirs)})
    return pd.DataFrame(rows)


def curve_wide(curves: pd.DataFrame) -> pd.DataFrame:
    """Tables 3–4's layout: one row per (model, layers removed), one MMLU column per method (ours), then the
    paper's (``Paper <method>``)."""
    if curves.empty:
        return curves
    methods = list(dict.fromkeys(m for m in curves["Method"] if m != "Vanilla"))
    out = []
    for (model, k), g in curves.groupby(["Model", "Layers removed"], sort=True):
        row = {"Model": model, "Layers removed": k, "CR (%)": g["CR (%)"].iloc[0],
               "Sparsity (%)": g["Sparsity (%)"].iloc[0]}
        for m in methods:
            hit = g[g["Method"].isin([m, "Vanilla"])]
            row[m] = hit["MMLU"].iloc[0] if len(hit) else None
        for m in methods:
            hit = g[g["Method"].isin([m, "Vanilla"])]
            row[f"Paper {m}"] = hit["Paper MMLU"].iloc[0] if len(hit) else None
        out.append(row)
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------- Fig. 6
def subject_accuracy(raw: Mapping[str, Any], subjects: Sequence[str] = FIG6_SUBJECTS) -> dict[str, tuple[float | None, int]]:
    """``{subject: (accuracy in %, documents)}`` from lm-eval's per-document log of an MMLU run (the
    ``samples`` of ``task-mmlu.raw.json``, kept with ``log_samples: true`` on evaluation.tasks.mmlu); a
    subject without documents gets ``(None, 0)``. Raises ValueError when the run kept no samples."""
    samples = raw.get("samples")
    if not samples:
        raise ValueError("task-mmlu.raw.json has no per-document samples: set evaluation.tasks.mmlu.log_samples: "
                         "true (and limit: null to reach every subject) for MKA Fig. 6")
    docs = [d for task_docs in samples.values() for d in task_docs]
    out = {}
    for subject in subjects:
        hits = [float(d["acc"]) for d in docs if (d.get("doc") or {}).get("subject") == subject]
        out[subject] = (100.0 * sum(hits) / len(hits) if hits else None, len(hits))
    return out


def subject_table(points: Sequence[Mapping[str, Any]], subjects: Sequence[str] = FIG6_SUBJECTS) -> pd.DataFrame:
    """MKA Fig. 6 as a table: per method, layers removed and subject, the accuracy (%) and the number of
    documents it rests on. A point carries ``raw`` (the task-mmlu.raw.json dict) instead of ``record``."""
    rows = []
    for p in points:
        acc = subject_accuracy(p["raw"], subjects)
        for subject in subjects:
            a, n = acc[subject]
            rows.append({"Model": p["model"], "Method": p["method"], "Layers removed": int(p["layers_removed"]),
                         "Subject": subject, "Accuracy (%)": _r(a), "Documents": n})
    return pd.DataFrame(rows)


__all__ = ["FIG6_SUBJECTS", "QUANT_NAMES", "TABLE2_TASKS", "curve_table", "curve_wide", "mka_cr_pct",
           "param_sparsity_pct", "quant_factor", "quant_name", "subject_accuracy", "subject_table", "table1",
           "table2", "task_pct"]
