"""Training data of the post-training methods: token chunks and a resumable batch order.

The chunks are built exactly like a calibration set (:mod:`layerpuzzle.data.calibration`):
``n`` text rows of ``dataset`` (default WikiText-2 train, offline via the mirror),
permuted with ``seed``, joined with ``"\\n\\n"``, tokenized and cut into
non-overlapping ``seq_len``-token chunks.  So the workflow's ``calibration_set``
rule builds them (``results/{model}/calib/<id>.safetensors``) and they are an
artifact like any other.

CoMe's distillation data is **unknown** (docs/methods/come_sp.md, docs/methods/come_mp.md: not stated in the appendix);
the paper settings (config/paper.yaml) assume a pretraining-style corpus in
512-token chunks.  LLM-Streamline's original code uses SlimPajama 2048-token
blocks, FuseGPT WikiText-2 2048-token windows (docs/methods/fusegpt_mi.md, docs/methods/streamline.md).

Batch order (:class:`BatchOrder`): the chunk indices form one stream, the
concatenation of permutations ``default_rng([seed, p]).permutation(N)`` for
passes p = 0, 1, …; optimiser step ``s`` takes stream positions
``[s·B, (s+1)·B)``.  The batch of a step is therefore a pure function of
``(seed, N, B, s)``: resuming at step ``s`` needs no saved sampler state, and
the saved "data position" (:meth:`BatchOrder.position`) is informative.

Data passes (:func:`data_use`): a phase of T steps draws T·B chunks, i.e. T·B / N passes over the
N chunks; beyond one pass the batches wrap (repeat, reshuffled).  Every phase of a multi-phase
run (each CoMe-mp layer, each FuseGPT iteration) starts again at step 0, so all phases see the
same batch sequence.  Both are logged and recorded (training.json ``data_use``, the model card).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from ..data.calibration import CalibrationSpec

log = logging.getLogger(__name__)


def training_data_spec(settings: dict) -> CalibrationSpec:
    """The chunk set of a method's ``data`` setting ``{dataset, n (text rows), seed, seq_len}``."""
    return CalibrationSpec(**{k: settings[k] for k in ("dataset", "n", "seed", "seq_len", "packing", "selection")
                              if k in settings})


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


def data_use(order: BatchOrder, steps: int, phases: int = 1, what: str = "phase") -> dict[str, Any]:
    """How a run uses its training chunks; logs a warning when the batches wrap.

    ``passes = steps · batch_size / n_chunks`` per phase (each of the ``phases`` phases restarts the batch
    order at step 0, so they all see the same batches).
    """
    samples = steps * order.batch_size
    record = {"chunks": order.n_chunks, "batch_size": order.batch_size, "steps_per_phase": steps,
              "samples_per_phase": samples, "passes_per_phase": samples / order.n_chunks,
              "wraps": samples > order.n_chunks, "phases": phases, "phases_share_batches": phases > 1}
    if record["wraps"]:
        shared = f" (and each of the {phases} {what}s is trained on the same batch sequence)" if phases > 1 else ""
        log.warning("training data: %d steps x batch %d = %d chunks drawn from %d: %.3g passes over the data, "
                    "the batches repeat%s", steps, order.batch_size, samples, order.n_chunks,
                    record["passes_per_phase"], shared)
    elif phases > 1:
        log.info("training data: each of the %d %ss is trained on the same %d of %d chunks", phases, what,
                 samples, order.n_chunks)
    return record


def describe_data_use(record: dict[str, Any], what: str = "phase") -> str:
    """One model-card sentence about :func:`data_use`'s record."""
    text = (f"Training data use: {record['steps_per_phase']} steps x batch {record['batch_size']} = "
            f"{record['samples_per_phase']} chunks drawn from {record['chunks']} per {what}, "
            f"{record['passes_per_phase']:.3g} pass(es) over the data"
            + ("; the batches wrap (repeat, reshuffled)" if record["wraps"] else ""))
    if record["phases_share_batches"]:
        text += f"; all {record['phases']} {what}s use the same batch sequence"
    return text + "."


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
