"""Pruned / merged checkpoints: a standard HF directory plus what explains it.

A checkpoint directory holds the safetensors weights and config (reduced
``num_hidden_layers``, renumbered ``layer_idx``), the tokenizer, a README model
card, ``layer_map.json`` (which original layers every kept layer covers) and
any extra JSON files a method wants to keep beside it.  It is written to a
temporary directory and renamed, so a half-written checkpoint never exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..atomic import atomic_dir

LOAD_SNIPPET = """```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("{path}")
tokenizer = AutoTokenizer.from_pretrained("{path}")
```"""


def layer_map_from_groups(groups: Sequence[Sequence[int]]) -> list[dict[str, Any]]:
    """``[{student: b, teacher_layers: [...], teacher_last: a}]`` for every student layer."""
    return [
        {"student": b, "teacher_layers": sorted(int(x) for x in g), "teacher_last": max(int(x) for x in g)}
        for b, g in enumerate(groups)
    ]


def model_card(*, title: str, method: str, model: str, summary: str, params: dict[str, Any],
               layer_map: list[dict[str, Any]] | None, notes: Sequence[str] = ()) -> str:
    lines = [f"# {title}", "", summary, "", f"- base model: `{model}`", f"- method: `{method}`", "",
             "## Parameters", "", "```json", json.dumps(params, indent=2, sort_keys=True, default=str), "```", ""]
    if layer_map is not None:
        lines += ["## Layer map", "", "| student layer | original layers |", "| --- | --- |"]
        lines += [f"| {e['student']} | {', '.join(map(str, e['teacher_layers']))} |" for e in layer_map]
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Load", "", LOAD_SNIPPET.format(path="<this directory>"), "",
              "Provenance (inputs, parameters, code version, seed): `provenance.json`.", ""]
    return "\n".join(lines)


def save_checkpoint(model, tokenizer, out_dir: str | Path, *, card: str,
                    layer_map: list[dict[str, Any]] | None = None,
                    extra_json: dict[str, Any] | None = None) -> Path:
    """Write ``model`` + ``tokenizer`` + card + layer map atomically to ``out_dir``."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        if layer_map is not None:
            (tmp / "layer_map.json").write_text(json.dumps(layer_map, indent=2) + "\n")
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return out_dir
