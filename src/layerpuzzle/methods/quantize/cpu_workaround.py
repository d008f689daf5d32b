"""AWQ without an accelerator: llm-compressor 0.14.0.1 pins memory unconditionally.

``AWQModifier`` pins every cached layer input before its grid search
(``cache.pin_memory(batch_index)`` in ``llmcompressor/modifiers/transform/awq/base.py``), and
``Tensor.pin_memory()`` raises "Cannot access accelerator device when none is available" on a machine
without one. Pinning only speeds up host-to-device copies, so skipping it changes no number.

:func:`awq_pin_memory_workaround` replaces ``IntermediatesCache.pin_memory`` by a no-op for the
duration of the block, only when the scheme runs AWQ and ``torch.accelerator.is_available()`` is false,
logs a warning when it does, and restores the method afterwards.

To drop it: once an llm-compressor release skips pinning without an accelerator (test: AWQ ``oneshot``
on a CPU-only machine without this block), delete this module and its one use in ``run.py``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import torch

log = logging.getLogger(__name__)

NAME = "awq_cpu_pin_memory_noop"


def accelerator_available() -> bool:
    acc = getattr(torch, "accelerator", None)
    return bool(acc.is_available()) if acc is not None else torch.cuda.is_available()


@contextlib.contextmanager
def awq_pin_memory_workaround(needed: bool) -> Iterator[bool]:
    """Yield whether the workaround was applied (``needed`` and no accelerator)."""
    if not needed or accelerator_available():
        yield False
        return
    from llmcompressor.pipelines.cache import IntermediatesCache

    original = IntermediatesCache.__dict__["pin_memory"]
    log.warning("no accelerator: llm-compressor's AWQ pins memory unconditionally, which fails on CPU; "
                "IntermediatesCache.pin_memory is a no-op for this run (%s; numbers unchanged)", NAME)
    IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None
    try:
        yield True
    finally:
        IntermediatesCache.pin_memory = original
