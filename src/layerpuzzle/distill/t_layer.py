"""Training cost T_layer of a post-training recipe (paper App. B.2, the equation after Table 7).

    T_layer = #Iterations × #Layers × #Epochs × #Steps × BatchSize × TokenLength

``#Layers`` is the number of layers updated per iteration, ``#Steps`` the
optimiser steps per epoch.  T_layer counts layer-token updates: how many
(layer, token) pairs receive a gradient step over the whole post-training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainingBudget:
    """One row of Table 7."""

    iterations: int
    layers_per_iteration: int
    epochs: int
    steps: int
    batch_size: int
    token_length: int

    @property
    def t_layer(self) -> int:
        return t_layer(self.iterations, self.layers_per_iteration, self.epochs, self.steps,
                       self.batch_size, self.token_length)

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "T_layer": self.t_layer}


def t_layer(iterations: int, layers: int, epochs: int, steps: int, batch_size: int, token_length: int) -> int:
    """#Iterations × #Layers × #Epochs × #Steps × BatchSize × TokenLength (an exact integer)."""
    values = (iterations, layers, epochs, steps, batch_size, token_length)
    if any(int(v) != v or v < 0 for v in values):
        raise ValueError(f"T_layer factors must be non-negative integers, got {values}")
    out = 1
    for v in values:
        out *= int(v)
    return out


# The paper's Table 7 settings (docs/tables.md, docs/tables.md); T_layer printed 2.93B, 0.31B, 0.23B, 1.15B.
PAPER_TABLE7: dict[str, TrainingBudget] = {
    "FuseGPT": TrainingBudget(10, 7, 20, 128, 8, 2048),
    "LLM-Streamline": TrainingBudget(1, 1, 5, 938, 32, 2048),
    "CoMe-mp": TrainingBudget(7, 1, 1, 2000, 32, 512),
    "CoMe-sp": TrainingBudget(1, 7, 1, 10000, 32, 512),
}
