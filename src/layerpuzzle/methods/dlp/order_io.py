"""Removal orders as parquet artifacts (one row per rank) and SLEB's candidate log.

``order.parquet`` columns: ``rank`` (0 = removed first), ``layer`` (original
index), ``score``, ``protected``, ``source``; its ``attrs`` (stored in the
parquet metadata) hold ``method``, ``n_layers`` and ``info`` (calibration,
parameters, notes).  ``candidates.parquet`` (SLEB) has one row per
(iteration, candidate): ``iteration, layer, position, nll, chosen``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ...atomic import atomic_file
from .removal import RemovalOrder


def order_frame(order: RemovalOrder) -> pd.DataFrame:
    df = pd.DataFrame({
        "rank": range(len(order.layers)),
        "layer": order.layers,
        "score": [float(s) for s in order.scores],
        "protected": order.protected,
        "source": order.source,
    })
    # attrs travel in the parquet metadata; JSON round-trip keeps them plain
    df.attrs = {"method": order.method, "n_layers": order.n_layers,
                "info": json.loads(json.dumps(order.info, default=str))}
    if order.seconds is not None:  # run bookkeeping (LaCo Table 4's pruning time), not part of the order
        df.attrs["seconds"] = float(order.seconds)
    return df


def write_order(order: RemovalOrder, path: str | Path) -> None:
    with atomic_file(path) as tmp:
        order_frame(order).to_parquet(tmp, index=False)


def read_order(path: str | Path) -> RemovalOrder:
    df = pd.read_parquet(path).sort_values("rank")
    return RemovalOrder(method=df.attrs["method"], n_layers=int(df.attrs["n_layers"]),
                        layers=[int(x) for x in df.layer], scores=[float(x) for x in df.score],
                        protected=[bool(x) for x in df.protected], source=[str(x) for x in df.source],
                        info=dict(df.attrs.get("info") or {}), seconds=df.attrs.get("seconds"))


def write_frame(df: pd.DataFrame, path: str | Path, attrs: dict[str, Any] | None = None) -> None:
    df = df.copy()
    df.attrs = json.loads(json.dumps(attrs or {}, default=str))
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=False)
