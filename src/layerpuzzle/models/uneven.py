"""Heterogeneous-width checkpoints (minimal stand-in; the shared version replaces this file at merge).

A checkpoint directory is a normal HF directory with the *unpruned* ``config.json`` (untied embeddings),
``uneven_layers.json`` = ``{"format": "layerpuzzle-uneven/1", "kind": <kind>, "layers": [...], ...}`` and the
reshaped weights in safetensors.  Loading builds the model from the config, lets the kind's rebuilder reshape
it in place to the recorded shapes, then loads the state dict strictly.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Callable

import torch

FORMAT = "layerpuzzle-uneven/1"
RECORD_FILE = "uneven_layers.json"

Rebuilder = Callable[[Any, dict[str, Any]], None]

_REBUILDERS: dict[str, Rebuilder] = {}
_LAZY = {"sliced": "layerpuzzle.methods.slicegpt.rebuild:rebuild_sliced"}


def register_rebuilder(kind: str, fn: Rebuilder) -> None:
    """Register ``fn(model, record) -> None`` that reshapes a fresh model of ``kind`` in place."""
    _REBUILDERS[kind] = fn


def _rebuilder(kind: str) -> Rebuilder:
    if kind not in _REBUILDERS and kind in _LAZY:
        module, name = _LAZY[kind].split(":")
        register_rebuilder(kind, getattr(importlib.import_module(module), name))
    if kind not in _REBUILDERS:
        raise ValueError(f"{RECORD_FILE} kind {kind!r} has no rebuilder; allowed: {sorted(set(_REBUILDERS) | set(_LAZY))}")
    return _REBUILDERS[kind]


def read_record(path: str | Path) -> dict[str, Any]:
    record = json.loads((Path(path) / RECORD_FILE).read_text())
    if record.get("format") != FORMAT:
        raise ValueError(f"{RECORD_FILE} format {record.get('format')!r} is not supported; allowed: {FORMAT!r}")
    return record


def load_uneven(path: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Build from ``config.json``, reshape with the kind's rebuilder, load the safetensors strictly; eval mode."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(path)
    record = read_record(path)
    config = AutoConfig.from_pretrained(str(path))
    config._attn_implementation = "sdpa"
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    _rebuilder(record["kind"])(model, record)
    state: dict[str, torch.Tensor] = {}
    for file in sorted(path.glob("*.safetensors")):
        state.update(load_file(str(file)))
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
