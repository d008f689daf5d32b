"""Derived models: a checkpoint of one model used as the dense model of another (re-pruning, LaCo Tables 6/21/24).

A config entry ``models.<name>: {source: derived, derived_from: <model>, checkpoint: <checkpoint id>}``
makes ``results/<name>/dense`` a copy of that checkpoint (rule ``derive_model``), so every method rule,
calibration set, score and evaluation works on it unchanged.  The copy keeps the checkpoint's files
(weights, tokenizer, ``layer_map.json``, ``pruning.json``, an uneven-width record) and adds
``derived.json``: the chain ``[{model, checkpoint, as}]`` from the original model, so the path
``results/<name>/pruned/laco/n6/default`` and its provenance name how the model was made.  The
checkpoint's own provenance record is kept as ``source_provenance.json`` (the job writes a new
``provenance.json``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Sequence

from ..atomic import atomic_dir

DERIVED_FILE = "derived.json"


def derive_model(source_dir: str | Path, out_dir: str | Path, chain: Sequence[dict[str, Any]]) -> Path:
    """Copy checkpoint ``source_dir`` to ``out_dir`` atomically, recording ``chain`` in ``derived.json``."""
    src = Path(source_dir)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"derived model: {src} is not a model directory (no config.json)")
    with atomic_dir(out_dir) as tmp:
        for f in sorted(src.iterdir()):
            if f.is_dir():
                continue
            name = "source_provenance.json" if f.name == "provenance.json" else f.name
            shutil.copy2(f, tmp / name)
        (tmp / DERIVED_FILE).write_text(json.dumps({"chain": list(chain)}, indent=2, sort_keys=True) + "\n")
    return Path(out_dir)


def read_chain(model_dir: str | Path) -> list[dict[str, Any]]:
    """The chain of a derived model's directory ([] for an original model)."""
    f = Path(model_dir) / DERIVED_FILE
    return json.loads(f.read_text())["chain"] if f.is_file() else []
