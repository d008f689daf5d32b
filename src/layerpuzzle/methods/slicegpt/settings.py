"""SliceGPT settings: how much to slice and how, validated once.

Exactly one of ``slicing`` (SliceGPT's ``--sparsity``: the fraction of the embedding dimension removed) and
``target`` (the fraction of the dense model's parameters to remove; the width is then solved, see
:mod:`.budget`) is given.  Defaults follow the reference code's ``run_slicegpt.py``: ``round_interval`` 8,
``final_orientation`` ``"random"``, the LM head not sliced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ORIENTATIONS = ("pca", "random")
TARGET_RULES = ("at_most", "at_least", "nearest")


@dataclass(frozen=True)
class SliceSettings:
    slicing: float | None = None  # fraction s of the embedding dimension removed, in (0, 1)
    target: float | None = None  # fraction of the dense parameter count removed, in (0, 1)
    target_rule: str = "at_most"  # which grid width a target picks (see budget.solve_width)
    round_interval: int = 8  # d' is a multiple of this
    slice_head: bool = False  # also slice the lm_head input (reference: off)
    final_orientation: str = "random"  # random rotation inside the kept subspace (function-preserving)
    seed: int = 0  # for final_orientation="random"
    batch_size: int = 8  # calibration windows per forward

    def __post_init__(self):
        if (self.slicing is None) == (self.target is None):
            raise ValueError(f"SliceGPT needs exactly one of 'slicing' and 'target', got slicing={self.slicing!r}, "
                             f"target={self.target!r}; allowed: one number in (0, 1), the other unset")
        for key in ("slicing", "target"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and 0.0 < float(value) < 1.0):
                raise ValueError(f"SliceGPT '{key}' = {value!r} is not allowed; allowed: a number in (0, 1) "
                                 f"(exclusive), the fraction of "
                                 f"{'the embedding dimension' if key == 'slicing' else 'dense parameters'} removed")
        if self.target_rule not in TARGET_RULES:
            raise ValueError(f"SliceGPT 'target_rule' = {self.target_rule!r} is not allowed; "
                             f"allowed: {', '.join(TARGET_RULES)}")
        if self.final_orientation not in ORIENTATIONS:
            raise ValueError(f"SliceGPT 'final_orientation' = {self.final_orientation!r} is not allowed; "
                             f"allowed: {', '.join(ORIENTATIONS)}")
        for key in ("round_interval", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SliceGPT '{key}' = {value!r} is not allowed; allowed: an integer >= 1")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SliceSettings":
        names = set(cls.__dataclass_fields__)
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown SliceGPT keys {sorted(unknown)}; allowed: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
