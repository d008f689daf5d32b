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
from typing import Any, Mapping, Sequence, Union

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
               layer_map: list[dict[str, Any]] | None, notes: Sequence[str] = (),
               load_section: str | None = None) -> str:
    """The README model card; ``load_section`` replaces the default ``from_pretrained`` snippet."""
    lines = [f"# {title}", "", summary, "", f"- base model: `{model}`", f"- method: `{method}`", "",
             "## Parameters", "", "```json", json.dumps(params, indent=2, sort_keys=True, default=str), "```", ""]
    if layer_map is not None:
        lines += ["## Layer map", "", "| student layer | original layers |", "| --- | --- |"]
        lines += [f"| {e['student']} | {', '.join(map(str, e['teacher_layers']))} |" for e in layer_map]
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Load", "", load_section or LOAD_SNIPPET.format(path="<this directory>"), "",
              "Provenance (inputs, parameters, code version, seed): `provenance.json`.", ""]
    return "\n".join(lines)


def save_checkpoint(model, tokenizer, out_dir: str | Path, *, card: str,
                    layer_map: list[dict[str, Any]] | None = None,
                    extra_json: dict[str, Any] | None = None, write_extra=None) -> Path:
    """Write ``model`` + ``tokenizer`` + card + layer map atomically to ``out_dir``; ``write_extra(tmp_dir)``
    may add artifacts (loss curves) before the rename."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        if layer_map is not None:
            (tmp / "layer_map.json").write_text(json.dumps(layer_map, indent=2) + "\n")
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        if write_extra is not None:
            write_extra(tmp)
    return out_dir


def target_pct(target_fraction: float) -> float | int:
    """The target in percent as its path label states it: an int for whole percents (30), else the exact value (29.9)."""
    pct = round(100 * float(target_fraction), 6)
    return int(pct) if pct.is_integer() else pct


# A target as the layer methods' jobs receive it (rule param ``target``, layerpuzzle.config.target_param): a
# fraction of all parameters (``sp30`` -> 0.3), or ``{"layers": k}`` for a layer-count target (``n8``).
Target = Union[float, Mapping[str, int]]


def layers_to_remove(dense_config, target: Target) -> int:
    """Layers a method removes for ``target``: ``k`` for a layer-count target ``{"layers": k}`` (1 <= k < L),
    else the Table 3 rule for a sparsity fraction (docs/sparsity.md), nearest sparsity."""
    from ..sparsity import ArchSpec, layer_count, removed_for, sparsity

    spec = ArchSpec.from_hf_config(dense_config)
    if layer_count(target) is not None:
        try:
            return removed_for(spec, target)
        except ValueError as exc:
            raise ValueError(f"{exc}. Fix run.targets or the variant's targets.") from None
    n = removed_for(spec, target)
    if n == 0:
        one = sparsity(spec, 1)
        raise ValueError(f"sparsity target {float(target)!r} removes no layer of this model "
                         f"({spec.num_hidden_layers} layers, one layer = {100 * one:.2f} % of the parameters); "
                         f"allowed: a target above {one / 2:.6g} (half a layer). Fix run.targets or the variant's targets.")
    return n


def check_target(model_dir: str | Path, target: Target) -> int:
    """:func:`layers_to_remove` from the ``config.json`` in ``model_dir``: a job calls it before loading any
    weights, so a target the model cannot take fails in seconds (models whose shape the config does not fix)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return layers_to_remove(config, target)


def target_fields(target: Target) -> dict[str, Any]:
    """What ``pruning.json`` records about the requested target: ``target_fraction`` and ``target_pct`` for a
    sparsity target; for a layer-count target both null and ``target_layers`` = k (the sparsity those k
    layers give is ``sparsity_pct``)."""
    from ..sparsity import layer_count

    k = layer_count(target)
    if k is not None:
        return {"target_fraction": None, "target_pct": None, "target_layers": k}
    return {"target_fraction": float(target), "target_pct": target_pct(target)}


def pruning_record(dense_config, *, method: str, variant: str, params: dict[str, Any],
                   target_fraction: Target, removed_layers: int) -> dict[str, Any]:
    """``pruning.json``: what the results table needs to label a checkpoint's row (``target_fraction``: the
    target as the job received it, a fraction or ``{"layers": k}``)."""
    from ..sparsity import ArchSpec, sparsity

    spec = ArchSpec.from_hf_config(dense_config)
    return {
        "method": method,
        "variant": variant,
        "params": params,
        **target_fields(target_fraction),
        "removed_layers": int(removed_layers),
        "sparsity_pct": round(100 * sparsity(spec, removed_layers), 4),
        "dense_layers": spec.num_hidden_layers,
    }


def timing_fields(pruning_seconds: float | None, parts: dict[str, float] | None = None) -> dict[str, Any]:
    """``{"pruning_seconds": s, "timing": {**parts, "core_s": s}}`` for ``pruning.json`` (empty when ``s`` is None)."""
    if pruning_seconds is None:
        return {}
    s = float(pruning_seconds)
    return {"pruning_seconds": s, "timing": {**{k: float(v) for k, v in (parts or {}).items()}, "core_s": s}}


def save_pruned(model, tokenizer, out_dir: str | Path, *, dense_config, base_model: str, method: str,
                variant: str, params: dict[str, Any], target_fraction: Target,
                layer_groups: Sequence[Sequence[int]], summary: str, notes: Sequence[str] = (),
                extra_json: dict[str, Any] | None = None, write_extra=None,
                pruning_seconds: float | None = None, timing: dict[str, float] | None = None) -> Path:
    """Write a pruned/merged checkpoint with its ``pruning.json``, ``layer_map.json`` and model card.

    ``pruning_seconds`` (recorded also as ``timing.core_s``, with the parts in ``timing``) is the wall time of
    the method's pruning computation only — not loading, data preparation or saving: LaCo Table 4's
    definition (docs/efficiency.md).

    ``layer_groups[b]`` lists the original layers student layer ``b`` stands for
    (one entry for a kept layer, several for a merged one).  ``write_extra(tmp_dir)``
    may add method artifacts (per-iteration scores, sensitivities) before the rename.
    """
    removed = int(dense_config.num_hidden_layers if hasattr(dense_config, "num_hidden_layers")
                  else dense_config["num_hidden_layers"]) - len(layer_groups)
    record = pruning_record(dense_config, method=method, variant=variant, params=params,
                            target_fraction=target_fraction, removed_layers=removed)
    record.update(timing_fields(pruning_seconds, timing))
    lmap = layer_map_from_groups(layer_groups)
    target_key = "target_fraction" if record["target_fraction"] is not None else "target_layers"
    card = model_card(
        title=f"{base_model} — {method}{f' ({variant})' if variant else ''}, {record['removed_layers']} layers removed "
              f"({record['sparsity_pct']:.2f}% of parameters)",
        method=method, model=base_model, summary=summary, params={**params, target_key: record[target_key]},
        layer_map=lmap, notes=notes)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        (tmp / "layer_map.json").write_text(json.dumps(lmap, indent=2) + "\n")
        (tmp / "pruning.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        if write_extra is not None:
            write_extra(tmp)
    return out_dir
