"""Training data of the post-training methods: token chunks and a resumable batch order.

The chunks are built exactly like a calibration set (:mod:`layerpuzzle.data.calibration`):
``n`` text rows of ``dataset`` (default WikiText-2 train, offline via the mirror),
permuted with ``seed``, joined with ``"\\n\\n"``, tokenized and cut into
non-overlapping ``seq_len``-token chunks.  So the workflow's ``calibration_set``
rule builds them (``results/{model}/calib/<id>.safetensors``) and they are an
artifact like any other.

CoMe's distillation data is **unknown** (come.md §7: not stated in the appendix);
the paper settings (config/paper.yaml) assume a pretraining-style corpus in
512-token chunks.  LLM-Streamline's original code uses SlimPajama 2048-token
blocks, FuseGPT WikiText-2 2048-token windows (baselines.md §7–8).

Batch order (:class:`BatchOrder`): the chunk indices form one stream, the
concatenation of permutations ``default_rng([seed, p]).permutation(N)`` for
passes p = 0, 1, …; optimiser step ``s`` takes stream positions
``[s·B, (s+1)·B)``.  The batch of a step is therefore a pure function of
``(seed, N, B, s)``: resuming at step ``s`` needs no saved sampler state, and
the saved "data position" (:meth:`BatchOrder.position`) is informative.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..data.calibration import CalibrationSpec


def training_data_spec(settings: dict) -> CalibrationSpec:
    """The chunk set of a method's ``data`` setting ``{dataset, n (text rows), seed, seq_len}``."""
    return CalibrationSpec(**{k: settings[k] for k in ("dataset", "n", "seed", "seq_len", "packing") if k in settings})


@dataclass(frozen=True)
class BatchOrder:
    """Deterministic, resumable order of chunk indices (see module docstring)."""

    n_chunks: int
    batch_size: int
    seed: int

    def __post_init__(self) -> None:
        if self.n_chunks <= 0 or self.batch_size <= 0:
            raise ValueError(f"need n_chunks > 0 and batch_size > 0, got {self.n_chunks}, {self.batch_size}")

    @lru_cache(maxsize=8)
    def _pass(self, p: int) -> np.ndarray:
        return np.random.default_rng([self.seed, p]).permutation(self.n_chunks)

    def indices(self, step: int) -> torch.Tensor:
        """Chunk indices of the batch of optimiser step ``step`` (0-based)."""
        start = step * self.batch_size
        out = [int(self._pass(pos // self.n_chunks)[pos % self.n_chunks]) for pos in range(start, start + self.batch_size)]
        return torch.tensor(out, dtype=torch.long)

    def position(self, step: int) -> dict[str, int]:
        """Where step ``step`` starts in the chunk stream: pass and offset within it."""
        start = step * self.batch_size
        return {"stream_position": start, "pass": start // self.n_chunks, "offset": start % self.n_chunks}


def split_validation(chunks: torch.Tensor, n_val: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation): the last ``n_val`` chunks are held out (none when ``n_val`` is 0)."""
    if not 0 <= n_val < chunks.shape[0]:
        raise ValueError(f"validation chunks must be in [0, {chunks.shape[0]}), got {n_val}")
    return (chunks[: chunks.shape[0] - n_val], chunks[chunks.shape[0] - n_val:]) if n_val else (chunks, chunks[:0])


@dataclass(frozen=True)
class FixedBatches:
    """The released FuseGPT order: batch ``j`` = chunks ``[j·B, (j+1)·B)``, the same batches in the same order
    every epoch; optimiser step ``s`` takes batch ``s mod ⌊N/B⌋`` (``Fuser.update``: ``for epoch: for j``)."""

    n_chunks: int
    batch_size: int

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.n_chunks < self.batch_size:
            raise ValueError(f"need 0 < batch_size <= n_chunks, got batch_size {self.batch_size}, "
                             f"n_chunks {self.n_chunks}")

    @property
    def n_batches(self) -> int:
        return self.n_chunks // self.batch_size

    def indices(self, step: int) -> torch.Tensor:
        start = (step % self.n_batches) * self.batch_size
        return torch.arange(start, start + self.batch_size, dtype=torch.long)

    def position(self, step: int) -> dict[str, int]:
        return {"epoch_pass": step // self.n_batches, "batch": step % self.n_batches}


BATCH_ORDERS = ("shuffled", "fixed")
