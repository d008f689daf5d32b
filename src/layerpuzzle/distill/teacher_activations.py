"""Teacher activations: the dense model's hidden states at chosen layers, for every training chunk.

``H_T^{(a)}`` is the **output** of original decoder layer ``a`` (the raw residual
stream, before any final norm); ``a = -1`` denotes the embedding output (the
input of layer 0), which LLM-Streamline needs as its training input.

Two sources with one interface, ``teacher.batch(indices) -> {a: (B, S, D)}``:

* :class:`StoredTeacher` — computed once per (model, training data, layer set)
  by :func:`teacher_states` and kept as an artifact (:func:`save_teacher`).
  Cost: ``tokens × hidden × |layers| × 4`` bytes in fp32 (:func:`teacher_bytes`),
  e.g. 7,168 tokens × 576 × 8 layers × 4 B ≈ 132 MB for the SmolLM2 default, but
  164M tokens × 4096 × 7 × 4 B ≈ 18.8 TB for the paper's CoMe-sp budget on
  LLaMA-2-7B — far too large.
* :class:`StreamingTeacher` — recomputes the dense forward for each batch on the
  fly (``max(layers)+1`` extra layer forwards per step, no storage): the switch
  to use when the stored activations would be too large.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..atomic import atomic_file
from ..engine.runner import LayerwiseRunner

log = logging.getLogger(__name__)

EMBEDDING = -1  # "layer" -1: the embedding output = input of layer 0


def teacher_bytes(n_tokens: int, hidden_size: int, n_layers: int, bytes_per_value: int = 4) -> int:
    """Storage of stored teacher activations: tokens × hidden × |layers| × bytes per value."""
    return int(n_tokens) * int(hidden_size) * int(n_layers) * int(bytes_per_value)


@torch.no_grad()
def batch_states(runner: LayerwiseRunner, ids: Tensor, layers: Sequence[int]) -> dict[int, Tensor]:
    """Outputs of ``layers`` (and/or the embeddings, -1) of the runner's model for one batch of ids."""
    want = sorted(set(int(a) for a in layers))
    h = runner.model.model.embed_tokens(ids.to(runner.device))
    out = {EMBEDDING: h} if EMBEDDING in want else {}
    for i in range(max(want) + 1):
        h = runner.apply_layer(runner.model.model.layers[i], h, i)
        if i in want:
            out[i] = h
    return out


@torch.no_grad()
def teacher_states(model, chunks: Tensor, layers: Sequence[int], batch_size: int = 4,
                   device=None, progress: bool = True) -> dict[int, Tensor]:
    """``{a: (N, S, D)}`` fp32 on the CPU: the output of layer ``a`` for each of the N chunks."""
    from tqdm.auto import tqdm

    runner = LayerwiseRunner(model, chunks, batch_size=batch_size, device=device or next(model.parameters()).device)
    parts: dict[int, list[Tensor]] = {int(a): [] for a in layers}
    n_batches = -(-chunks.shape[0] // batch_size)
    for ids in tqdm(runner.batches(), total=n_batches, desc="teacher", disable=not progress, ascii=True,
                    mininterval=2.0):
        for a, h in batch_states(runner, ids, list(parts)).items():
            parts[a].append(h.float().cpu())
    return {a: torch.cat(p) for a, p in parts.items()}


def save_teacher(path: str | Path, states: dict[int, Tensor], input_ids: Tensor, meta: dict[str, str]) -> None:
    """One safetensors file: ``layer.<a>`` (N, S, D) per layer and the chunks' ``input_ids``."""
    tensors = {f"layer.{a}": t.contiguous() for a, t in states.items()}
    tensors["input_ids"] = input_ids.contiguous()
    meta = {**{k: str(v) for k, v in meta.items()}, "layers": ",".join(str(a) for a in sorted(states))}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_teacher(path: str | Path, input_ids: Tensor | None = None) -> "StoredTeacher":
    """Load stored activations; with ``input_ids``, check they were computed for exactly these chunks."""
    data = load_file(str(path))
    if input_ids is not None and not torch.equal(data["input_ids"], input_ids):
        raise ValueError(f"teacher activations {path} were computed for other training chunks")
    return StoredTeacher({int(k.split(".", 1)[1]): v for k, v in data.items() if k.startswith("layer.")})


class Teacher(Protocol):
    layers: list[int]

    def batch(self, indices: Tensor, layers: Sequence[int] | None = None) -> dict[int, Tensor]: ...


class StoredTeacher:
    """Teacher activations held in memory (loaded from the artifact)."""

    def __init__(self, states: dict[int, Tensor]):
        self.states = states
        self.layers = sorted(states)

    def batch(self, indices: Tensor, layers: Sequence[int] | None = None) -> dict[int, Tensor]:
        """``{a: (B, S, D)}`` for the chunks ``indices`` (all stored layers, or only ``layers``)."""
        return {a: self.states[a][indices] for a in (self.layers if layers is None else layers)}


class StreamingTeacher:
    """Teacher activations recomputed on the fly from the dense model (nothing stored)."""

    def __init__(self, model, chunks: Tensor, layers: Sequence[int], device=None):
        self.chunks = chunks
        self.layers = sorted(set(int(a) for a in layers))
        self.runner = LayerwiseRunner(model, chunks[:1], batch_size=1,
                                      device=device or next(model.parameters()).device)
        self._last: tuple[tuple[int, ...], dict[int, Tensor]] | None = None

    @torch.no_grad()
    def batch(self, indices: Tensor, layers: Sequence[int] | None = None) -> dict[int, Tensor]:
        """Runs the dense model up to the deepest requested layer (the last batch is cached)."""
        layers = self.layers if layers is None else sorted(set(int(a) for a in layers))
        key = (tuple(int(i) for i in indices), tuple(layers))
        if self._last is None or self._last[0] != key:
            states = batch_states(self.runner, self.chunks[indices], layers)
            self._last = (key, {a: h.float() for a, h in states.items()})
        return self._last[1]
