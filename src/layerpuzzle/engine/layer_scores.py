"""One streaming calibration pass: BI, SBI and activation statistics per layer.

The pass walks the model layer by layer (:class:`~.runner.LayerwiseRunner`),
keeping only the last ``max_span + 1`` depths of the residual stream in memory.
For every layer it accumulates

* the cosine statistics of ``h[l]`` vs ``h[l+m+1]`` for ``m = 0..max_span``
  (BI for m = 0, SBI of the window of m+1 layers otherwise; block_influence.py),
* the mean |activation| of every channel entering ``mlp.down_proj`` (the FFN
  intermediate features) and ``self_attn.o_proj`` (the concatenated head
  outputs): the inputs of CoMe's channel sensitivity (docs/layer_scores.md).

``last_layer_output`` chooses how ``h[L]`` is defined (docs/conventions.md): ``raw``
(the last layer's output, the paper's definition) or ``final_norm`` (after the
model's final RMSNorm, as HF ``output_hidden_states`` and the released codes see it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..models import architecture as arch
from .block_influence import ScoreTable
from .runner import Hidden, LayerwiseRunner, capture_inputs

LAST_LAYER_OUTPUT = ("raw", "final_norm")


@dataclass
class ActivationStats:
    """Σ|x| per input channel of down_proj and o_proj, and the token count."""

    down_proj_abs_sum: dict[int, torch.Tensor] = field(default_factory=dict)
    o_proj_abs_sum: dict[int, torch.Tensor] = field(default_factory=dict)
    n_tokens: dict[int, int] = field(default_factory=dict)

    def add(self, layer: int, which: str, x: torch.Tensor) -> None:
        flat = x.detach().reshape(-1, x.shape[-1]).abs().double().sum(0).cpu()
        store = self.down_proj_abs_sum if which == "down_proj" else self.o_proj_abs_sum
        store[layer] = store[layer] + flat if layer in store else flat
        if which == "down_proj":
            self.n_tokens[layer] = self.n_tokens.get(layer, 0) + x.reshape(-1, x.shape[-1]).shape[0]

    def mean_abs(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(E_t|a| per down_proj input channel, E_t|a| per o_proj input channel), fp32."""
        n = self.n_tokens[layer]
        return (self.down_proj_abs_sum[layer] / n).float(), (self.o_proj_abs_sum[layer] / n).float()


@dataclass
class CalibrationScores:
    table: ScoreTable
    activations: ActivationStats
    n_windows: int
    seq_len: int
    layer_forwards: int


def score_layers(
    runner: LayerwiseRunner,
    *,
    max_span: int = 1,
    last_layer_output: str = "raw",
    collect_activations: bool = True,
    start: int = 0,
    hidden: Hidden | None = None,
    prefix: list[Hidden] | None = None,
    on_state: Callable[[int, Hidden], None] | None = None,
    progress: bool = True,
) -> CalibrationScores:
    """Score every layer from ``start`` on in one pass.

    ``hidden`` is ``h[start]`` (default: the embeddings, ``start`` = 0);
    ``prefix`` the states ``h[start-max_span] .. h[start-1]`` that windows
    straddling ``start`` need (those before are unchanged by a merge at
    ``start`` and are not recomputed).  ``on_state(k, h[k])`` is called for
    every depth reached, so a caller may cache states for later passes.
    """
    if last_layer_output not in LAST_LAYER_OUTPUT:
        raise ValueError(f"last_layer_output={last_layer_output!r}; allowed: {', '.join(LAST_LAYER_OUTPUT)}")
    model = runner.model
    n_layers = arch.num_layers(model)
    if not 1 <= max_span + 1 <= n_layers:
        raise ValueError(f"max_span={max_span} needs 0 <= max_span < {n_layers} (the model's layers)")
    table = ScoreTable(n_layers=n_layers, max_span=max_span)
    acts = ActivationStats()
    if hidden is None:
        if start != 0:
            raise ValueError("pass hidden=h[start] when start > 0")
        hidden = runner.embed()
    # window of the most recent depths: (k, h[k])
    recent: deque[tuple[int, Hidden]] = deque(maxlen=max_span + 1)
    for j, h in enumerate(prefix or []):
        recent.append((start - len(prefix) + j, h))
    recent.append((start, hidden))
    if on_state:
        on_state(start, hidden)

    forwards_before = runner.layer_forwards
    for l in tqdm(range(start, n_layers), desc="layers", disable=not progress, leave=False):
        layer = arch.layers(model)[l]
        modules = {"down_proj": layer.mlp.down_proj, "o_proj": layer.self_attn.o_proj} if collect_activations else {}
        with capture_inputs(modules, lambda name, x, l=l: acts.add(l, name, x)):
            out = runner.layer(l, recent[-1][1])
        if l == n_layers - 1 and last_layer_output == "final_norm":
            out = runner.final_norm(out)
        k = l + 1  # depth of `out`
        for depth, h_prev in recent:
            m = k - depth - 1  # window depth..k-1 has m+1 layers
            if 0 <= m <= max_span:
                stats = table.stats(depth, m)
                for a, b in zip(h_prev, out):
                    stats.update(a, b)
        recent.append((k, out))
        if on_state:
            on_state(k, out)
    return CalibrationScores(
        table=table,
        activations=acts,
        n_windows=runner.input_ids.shape[0],
        seq_len=runner.input_ids.shape[1],
        layer_forwards=runner.layer_forwards - forwards_before,
    )
