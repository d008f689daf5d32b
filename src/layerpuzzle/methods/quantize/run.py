"""Run a scheme on a model with llm-compressor's ``oneshot`` and the project's own calibration windows.

The calibration windows (``(W, L)`` token ids, e.g. from ``layerpuzzle.data.calibration.load_calibration``)
are fed as a ``DataLoader`` of ``{"input_ids", "attention_mask"}`` batches in their stored order, so no
dataset is downloaded, nothing is shuffled or re-tokenized, and the calibration set's provenance stays ours.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import torch

from .cpu_workaround import NAME as AWQ_WORKAROUND
from .cpu_workaround import awq_pin_memory_workaround
from .schemes import IGNORE, Scheme, build_recipe, check_model, parse_scheme, quantized_linears, recipe_yaml

log = logging.getLogger(__name__)


def calibration_loader(calib_ids: torch.Tensor, batch_size: int = 1):
    """A ``DataLoader`` over the windows in order: batches of ``{"input_ids", "attention_mask"}`` (all ones)."""
    from torch.utils.data import DataLoader

    ids = torch.as_tensor(calib_ids)
    if ids.dim() != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"calibration ids must be a non-empty (windows, seq_len) tensor, got shape {tuple(ids.shape)}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"calibration ids must be integer token ids, got dtype {ids.dtype}")
    if batch_size < 1:
        raise ValueError(f"calibration batch_size must be >= 1, got {batch_size}")
    rows = [{"input_ids": w.long(), "attention_mask": torch.ones_like(w, dtype=torch.long)} for w in ids]
    return DataLoader(rows, batch_size=batch_size, shuffle=False)


def _ids_sha256(ids: torch.Tensor) -> str:
    return hashlib.sha256(ids.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("llmcompressor", "compressed-tensors", "transformers", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def zero_fractions(model) -> dict[str, float]:
    """Fraction of exactly-zero weights of every Linear a scheme touches."""
    return {name: float((mod.weight == 0).sum()) / mod.weight.numel() for name, mod in quantized_linears(model).items()}


def _require_llmcompressor() -> None:
    try:
        import llmcompressor  # noqa: F401
    except ImportError as exc:
        raise ImportError("quantization needs llm-compressor: pip install -e . installs it "
                          "(llmcompressor==0.14.0.1, a core dependency; see docs/quantization.md)") from exc


def quantize(model, tokenizer, calib_ids: torch.Tensor, scheme: str | Scheme, *, batch_size: int = 1,
             threads: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Apply ``scheme`` to ``model`` in place with ``oneshot``; return ``(model, record)``.

    ``model`` must have been loaded from a directory (``model.config.name_or_path``): ``oneshot`` reads
    that directory's ``config.json`` to check that the model is not already quantized in another format.
    ``threads`` sets ``torch.set_num_threads`` for the run (a rule's ``threads``); None leaves it alone.
    The record holds the scheme, the recipe YAML, ``timing.core_s`` (the ``oneshot`` call only), the
    package versions, the calibration windows' shape and sha256, and any workaround applied.
    """
    _require_llmcompressor()
    from llmcompressor import oneshot

    scheme = parse_scheme(scheme) if isinstance(scheme, str) else scheme
    source = getattr(model.config, "name_or_path", "") or ""
    if not (Path(source) / "config.json").is_file():
        raise ValueError(f"quantize needs a model loaded from a directory (model.config.name_or_path has no "
                         f"config.json: {source!r}); save it and load it with layerpuzzle.models.sources.load_model")
    if next(model.parameters()).dtype != torch.float32:
        log.warning("quantizing a %s model; the project runs quantization in float32 on CPU",
                    next(model.parameters()).dtype)
    check_model(scheme, model)
    loader = calibration_loader(calib_ids, batch_size)
    modifiers = build_recipe(scheme)
    yaml_text = recipe_yaml(modifiers)
    if threads is not None:
        torch.set_num_threads(int(threads))
    with awq_pin_memory_workaround(scheme.needs_awq_cpu_workaround) as patched:
        t0 = time.perf_counter()
        model = oneshot(model=model, processor=tokenizer, dataset=loader, recipe=modifiers)
        core_s = time.perf_counter() - t0
    ids = torch.as_tensor(calib_ids)
    record: dict[str, Any] = {
        "scheme": scheme.slug,
        "params": scheme.params(),
        "ignore": list(IGNORE),
        "recipe_yaml": yaml_text,
        "versions": _versions(),
        "timing": {"core_s": round(core_s, 3)},
        "threads": torch.get_num_threads(),
        "calibration": {"windows": int(ids.shape[0]), "seq_len": int(ids.shape[1]), "tokens": int(ids.numel()),
                        "batch_size": int(batch_size), "input_ids_sha256": _ids_sha256(ids)},
        "workarounds": [AWQ_WORKAROUND] if patched else [],
        "source": source,
    }
    if scheme.kind == "sparsegpt":
        fr = zero_fractions(model)
        sizes = {name: mod.weight.numel() for name, mod in quantized_linears(model).items()}
        record["zero_fraction"] = {"min": min(fr.values()), "max": max(fr.values()),
                                   "overall": sum(fr[n] * sizes[n] for n in fr) / sum(sizes.values())}
    log.info("%s on %s: %.1f s", scheme.slug, source, core_s)
    return model, record
