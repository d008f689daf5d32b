"""Quantization / sparsification of one checkpoint as a workflow step (rule ``oneshot_compress``).

Checkpoint ``{source}/oneshot/{scheme}``: the checkpoint ``source`` (``dense`` or any checkpoint id) loaded
from its directory, compressed by ``scheme`` through llm-compressor's ``oneshot`` on the project's own
calibration windows (:func:`layerpuzzle.methods.quantize.quantize`), and written with
:func:`~layerpuzzle.methods.quantize.save_quantized`: the compressed-tensors directory, a model card,
``quantization.json`` (scheme, recipe, versions, calibration sha256, timing, workarounds) and
``pruning.json`` (what the results tables read: the source's method, variant, target and layer counts, and
an ``oneshot`` block with the scheme).

Everything that can be checked without weights is checked first: the scheme slug, the group size against
the source's ``config.json`` widths, and that the source is neither an uneven-width checkpoint nor already
quantized.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .checkpoint import RECORD, save_quantized
from .cpu_workaround import NAME as AWQ_WORKAROUND
from .schemes import check_widths, config_widths, parse_scheme

log = logging.getLogger(__name__)

STAGE = "oneshot"
AWQ_NOTE = ("AWQ ran without an accelerator: llm-compressor 0.14.0.1 pins memory unconditionally, so "
            "`IntermediatesCache.pin_memory` was a no-op for this run (`awq_cpu_pin_memory_noop`; pinning only "
            "speeds up host-to-device copies, no number changes). To drop the workaround: once an "
            "llm-compressor release runs AWQ on a CPU-only machine without it, delete "
            "`layerpuzzle/methods/quantize/cpu_workaround.py` and its use in `run.py`.")


def check_source(source_dir: str | Path, scheme: str) -> dict[str, Any]:
    """Check ``scheme`` against the source checkpoint's ``config.json`` before any weight is loaded; return
    that config. Raises ValueError naming the checkpoint, the value and what is allowed."""
    parsed = parse_scheme(scheme)
    source_dir = Path(source_dir)
    if (source_dir / "uneven_layers.json").is_file():
        raise ValueError(f"checkpoint {str(source_dir)!r} has uneven layer widths (uneven_layers.json: LLM-Pruner "
                         f"or SliceGPT); oneshot cannot save and reload it; allowed sources: dense or a checkpoint "
                         f"with the dense model's widths")
    config = json.loads((source_dir / "config.json").read_text())
    if config.get("quantization_config"):
        raise ValueError(f"checkpoint {str(source_dir)!r} is already quantized "
                         f"({config['quantization_config'].get('format', 'compressed-tensors')}); allowed sources: "
                         f"dense, a method's checkpoint or a sparsegpt-* checkpoint")
    check_widths(parsed, config_widths(config))
    return config


def source_pruning(source_dir: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """The source's ``pruning.json`` (the dense model has none: method Dense, no layer removed)."""
    path = Path(source_dir) / "pruning.json"
    if path.is_file():
        return json.loads(path.read_text())
    return {"method": "Dense", "variant": "", "target_pct": 0, "removed_layers": 0, "sparsity_pct": 0.0,
            "dense_layers": config.get("num_hidden_layers")}


def run_oneshot(source_dir: str, calib_path: str, out_dir: str, *, model_name: str, source: str, scheme: str,
                calibration: dict[str, Any], batch_size: int = 1, dtype: str = "float32", device: str = "cpu",
                threads: int | None = None) -> dict[str, Any]:
    """Compress checkpoint ``source`` (directory ``source_dir``) of ``model_name`` with ``scheme``; write
    ``out_dir``. Returns what the job's provenance records (scheme, recipe, versions, workarounds)."""
    from ...data.calibration import load_calibration
    from ...models.sources import load_model
    from .run import quantize

    config = check_source(source_dir, scheme)
    model, tok = load_model(source_dir, dtype=dtype, device=device)
    ids = load_calibration(calib_path)
    model, record = quantize(model, tok, ids, scheme, batch_size=batch_size, threads=threads)
    record = {**record, "source": source, "source_dir": str(source_dir), "calibration_set": dict(calibration)}
    info = source_pruning(source_dir, config)
    oneshot = {"stage": STAGE, "scheme": record["scheme"], "source": source, **record["params"]}
    if "zero_fraction" in record:
        oneshot["zeroed_pct"] = round(100 * record["zero_fraction"]["overall"], 4)
    pruning = {**info, "oneshot": oneshot, "timing": record["timing"]}
    applied = AWQ_WORKAROUND in record["workarounds"]
    notes = [f"Source checkpoint: `{source}` ({info.get('method')}{', ' + info['variant'] if info.get('variant') else ''}"
             f"; {info.get('removed_layers')} layers removed).",
             f"Calibration: {ids.shape[0]} windows of {ids.shape[1]} tokens ({calibration.get('dataset')}, "
             f"seed {calibration.get('seed')}), sha256 of the token ids in `{RECORD}`."]
    if applied:
        notes.append(AWQ_NOTE)
        log.warning(AWQ_NOTE)
    extra = {"pruning.json": pruning}
    if (Path(source_dir) / "layer_map.json").is_file():  # which original layers each kept layer holds
        extra["layer_map.json"] = json.loads((Path(source_dir) / "layer_map.json").read_text())
    save_quantized(model, tok, out_dir, record, base_model=f"{model_name} `{source}`", notes=tuple(notes),
                   extra_json=extra)
    log.info("%s of %s: oneshot %.1f s", record["scheme"], source, record["timing"]["core_s"])
    return {"oneshot": {k: record[k] for k in ("scheme", "params", "recipe_yaml", "versions", "workarounds",
                                                "calibration", "timing")},
            **({"workaround_note": AWQ_NOTE} if applied else {})}
