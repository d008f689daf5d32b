"""Distances between adjacent decoder layers' weight matrices (LaCo Fig. 4).

For each projection ``P`` and adjacent pair ``(l, l+1)``:

    d_P(l) = ‖W_P^(l+1) − W_P^(l)‖_F        (fp64)

LaCo plots "the L2 distance" of the q, k, v, up and down matrices between adjacent
layers (Fig. 4); for matrices we read L2 as the Frobenius norm (the 2-norm of the
flattened difference).  The inputs are plain tensors by name, so a checkpoint's
safetensors files serve without building the model (:class:`CheckpointWeights`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from safetensors import safe_open

FIG4_PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.up_proj", "mlp.down_proj")
LAYER_KEY = "model.layers.{layer}.{projection}.weight"


class CheckpointWeights(Mapping[str, torch.Tensor]):
    """Read-only, lazy ``name → tensor`` view of a checkpoint directory's safetensors (sharded or not)."""

    def __init__(self, directory: str | Path):
        d = Path(directory)
        index = d / "model.safetensors.index.json"
        if index.exists():
            weight_map = json.loads(index.read_text())["weight_map"]
            self._where = {k: d / f for k, f in weight_map.items()}
        else:
            files = sorted(d.glob("*.safetensors"))
            if not files:
                raise FileNotFoundError(f"no *.safetensors in {d}")
            self._where = {}
            for f in files:
                with safe_open(str(f), framework="pt") as h:
                    self._where.update({k: f for k in h.keys()})

    def __getitem__(self, key: str) -> torch.Tensor:
        with safe_open(str(self._where[key]), framework="pt") as h:
            return h.get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def num_layers_in(weights: Mapping[str, torch.Tensor], projection: str = FIG4_PROJECTIONS[0]) -> int:
    """Number of decoder layers: consecutive ``l`` with ``model.layers.{l}.{projection}.weight`` present."""
    n = 0
    while LAYER_KEY.format(layer=n, projection=projection) in weights:
        n += 1
    return n


def adjacent_weight_distances(weights: Mapping[str, torch.Tensor],
                              projections: Sequence[str] = FIG4_PROJECTIONS) -> list[dict[str, Any]]:
    """Rows ``{"layer": l, "next_layer": l+1, "projection", "frobenius", "relative"}`` for every adjacent pair.

    ``relative`` = ``d_P(l) / ‖W_P^(l)‖_F`` (a scale-free companion; Fig. 4 plots ``frobenius``).
    ``weights``: e.g. ``model.state_dict()`` or :class:`CheckpointWeights`.
    """
    n = num_layers_in(weights, projections[0])
    if n < 2:
        raise ValueError(f"need at least 2 decoder layers named {LAYER_KEY!r}, found {n}")
    rows = []
    for p in projections:
        prev = weights[LAYER_KEY.format(layer=0, projection=p)].double()
        for l in range(n - 1):
            nxt = weights[LAYER_KEY.format(layer=l + 1, projection=p)].double()
            d = float(torch.linalg.vector_norm(nxt - prev))
            base = float(torch.linalg.vector_norm(prev))
            rows.append({"layer": l, "next_layer": l + 1, "projection": p.split(".")[-1], "frobenius": d,
                         "relative": d / base if base > 0 else float("nan")})
            prev = nxt
    return rows
