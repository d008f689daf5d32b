"""CoMe Table 4: the removal order of each DLP baseline at ~10/20/30 % (docs/tables.md, docs/tables.md).

A cell lists the removed layers (0-based) in removal order, the increments of
the successive sparsity levels separated by "/" (``7,6,11/8,4,10,9/12,14,13``
= 3, 7 and 10 layers).  For a model with a ``paper_name`` the paper's order is
printed beside ours; :func:`table4_vs_paper` compares them level by level
(same set, same order).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd

from ..models.checkpoint import layers_to_remove
from ..sparsity import ArchSpec, sparsity
from .paper import PAPER_DIR, load_paper_sparsity
from .results import method_rank
from ..methods.dlp.order_io import read_order
from ..methods.dlp.removal import RemovalOrder

PAPER_ORDERS_CSV = "table04_layer_order.csv"


@dataclass
class OrderEntry:
    """Our order of one (model, method) with the cumulative counts of the levels."""

    model: str
    method: str          # row label (method, with the variant label if any)
    base_method: str     # display name without variant (joins the paper)
    order: list[int]
    counts: list[int]    # cumulative layers removed at each level, e.g. [3, 7, 10]
    sparsities: list[float]  # percent of parameters at each level
    note: str = ""


def order_note(order: RemovalOrder) -> str:
    """Where an order comes from, in a few words (calibration, substitutes, published heads)."""
    info = order.info
    parts = []
    calib = info.get("calibration")
    if calib and calib != "data-free":
        used = info.get("calibration_windows_used")
        parts.append(f"{order.method}: calibration {calib}" + (f" ({used} windows)" if used else ""))
    if info.get("calibration_substitute"):
        parts.append("PG19 substitute")
    k = sum(s == "published" for s in order.source)
    if k:
        parts.append(f"first {k} = ShortGPT paper's published order")
    return ", ".join(parts)


def order_entry(model: str, method: str, base_method: str, order: RemovalOrder, dense_config,
                levels: Sequence[float], note: str = "") -> OrderEntry:
    """Our order of (model, method) cut at the Table 3 counts of ``levels`` (fractions)."""
    spec = ArchSpec.from_hf_config(dense_config)
    counts = [layers_to_remove(dense_config, f) for f in levels]
    note = note or order_note(order)
    covered = [c for c in counts if c <= len(order.layers)]
    if len(covered) < len(counts):  # a partial order (FuseGPT-MI run to a lower target): the levels it reaches
        note = f"{note}; only {len(order.layers)} layers removed: levels above {len(covered)} not run".lstrip("; ")
        counts = covered
    return OrderEntry(model=model, method=method, base_method=base_method, order=list(order.layers),
                      counts=counts, sparsities=[100 * sparsity(spec, n) for n in counts], note=note)


def order_entries(entries: Sequence[Mapping], model_dirs: Mapping[str, str], levels: Sequence[float]) -> list[OrderEntry]:
    """Entries of the workflow (dicts: model, method, base_method, order path, note) read from disk."""
    from transformers import AutoConfig

    configs = {m: AutoConfig.from_pretrained(d) for m, d in model_dirs.items()}
    return [order_entry(e["model"], e["method"], e["base_method"], read_order(e["order"]), configs[e["model"]],
                        levels, e.get("note", "")) for e in entries]


def increments(order: Sequence[int], counts: Sequence[int]) -> str:
    """``order`` cut at the cumulative ``counts``: ``"a,b/c,d,e/f"``."""
    if counts and max(counts) > len(order):
        raise ValueError(f"the order has {len(order)} entries, levels need {max(counts)}")
    parts, prev = [], 0
    for c in counts:
        parts.append(",".join(str(int(i)) for i in order[prev:c]))
        prev = c
    return "/".join(parts)


def load_paper_orders(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Table 4 as printed: ``model,method,sparsity_level,order`` (order = that level's increment)."""
    return pd.read_csv(path or PAPER_DIR / PAPER_ORDERS_CSV, dtype={"order": str})


def paper_order(paper: pd.DataFrame, paper_model: str, method: str) -> tuple[list[int], list[int]] | None:
    """(full order, cumulative counts) of the paper's (model, method), or None."""
    rows = paper[(paper.model == paper_model) & (paper.method == method)].sort_values("sparsity_level")
    if rows.empty:
        return None
    order, counts = [], []
    for text in rows.order:
        order += [int(x) for x in str(text).split()]
        counts.append(len(order))
    return order, counts


def _paper_sparsities(sparsity: pd.DataFrame, paper_model: str) -> list[float]:
    rows = sparsity[sparsity.model == paper_model].sort_values("target")
    return [float(x) for x in rows.sparsity_pct]


def _levels(values: Sequence[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def table4_wide(entries: Sequence[OrderEntry], paper_names: Mapping[str, str | None],
                paper: pd.DataFrame | None = None, paper_sparsity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paper layout: one row per method, one column per model (ours) and per paper model (paper)."""
    paper = load_paper_orders() if paper is None else paper
    paper_sparsity = load_paper_sparsity() if paper_sparsity is None else paper_sparsity
    models = list(dict.fromkeys(e.model for e in entries))
    methods = sorted(dict.fromkeys(e.method for e in entries),
                     key=lambda m: (method_rank(next(e.base_method for e in entries if e.method == m)), m))
    columns, cells, notes = {}, {}, {}
    for model in models:
        mine = [e for e in entries if e.model == model]
        columns[model] = f"{model} ({_levels(max(mine, key=lambda e: len(e.counts)).sparsities)})"
        name = paper_names.get(model)
        if name:
            columns[(model, "paper")] = f"{name} paper ({_levels(_paper_sparsities(paper_sparsity, name))})"
        for e in mine:
            cells[(e.method, model)] = increments(e.order, e.counts)
            if name:
                hit = paper_order(paper, name, e.base_method)
                cells[(e.method, (model, "paper"))] = increments(*hit) if hit else ""
            if e.note:
                notes.setdefault(e.method, []).append(e.note)
    rows = []
    for m in methods:
        row = {"Method": m}
        for key, header in columns.items():
            row[header] = cells.get((m, key), "")
        row["Note"] = "; ".join(dict.fromkeys(notes.get(m, [])))
        rows.append(row)
    return pd.DataFrame(rows, columns=["Method", *columns.values(), "Note"])


def table4_vs_paper(entries: Sequence[OrderEntry], paper_names: Mapping[str, str | None],
                    paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per model, method and level: the removed set of ours and the paper's, same set / same order."""
    paper = load_paper_orders() if paper is None else paper
    rows = []
    for e in entries:
        name = paper_names.get(e.model)
        hit = paper_order(paper, name, e.base_method) if name else None
        for k, n in enumerate(e.counts):
            ours = list(e.order[:n])
            row = {"Model": e.model, "Paper model": name or "", "Method": e.method, "Level": k + 1,
                   "Sparsity (%)": round(float(e.sparsities[k]), 2), "#Removed": n,
                   "Ours": ",".join(map(str, ours)), "Paper": "", "Same set": None, "Same order": None}
            if hit and k < len(hit[1]):
                theirs = hit[0][: hit[1][k]]
                row.update({"Paper": ",".join(map(str, theirs)), "Same set": set(ours) == set(theirs),
                            "Same order": ours == theirs})
            rows.append(row)
    return pd.DataFrame(rows)
