"""Peak memory and generation throughput of a checkpoint (LaCo Tables 5 and 20).

Protocol (LaCo gives none beyond "bf16, one A100, English Wikipedia"; ours):
every prompt is run alone (batch 1), greedy, exactly ``new_tokens`` new tokens
(``min_new_tokens = max_new_tokens``, so EOS cannot stop it early), KV cache on.
``warmup`` full passes over the prompts run first and are not measured.

    tokens_per_s = Σ_prompts new_tokens / Σ_prompts wall seconds of generate()

Memory (``memory_kind`` says which):

* CUDA — ``cuda_max_allocated``: ``torch.cuda.max_memory_allocated`` over the measured
  passes after ``reset_peak_memory_stats`` (weights, KV cache and activations: what
  LaCo's MB compare), in MiB.
* CPU — ``cpu_params+peak_rss_delta``: parameter + buffer bytes plus the rise of the
  process's peak resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``
  where allowed, else ``ru_maxrss``) over the measured passes above the RSS before them.
  RSS counts allocator caches and the Python heap, so the delta is approximate.

Compare checkpoints only as ratios to the dense model measured the same way
(:func:`efficiency_ratios`); absolute numbers depend on the machine.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..models import architecture as arch

MiB = 2 ** 20


def parameter_bytes(model) -> int:
    """Bytes of the distinct parameters and buffers (tied embeddings counted once)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def _status_bytes(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process in bytes (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


@torch.no_grad()
def _generate(model, ids: torch.Tensor, new_tokens: int, pad_token_id: int) -> int:
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                         max_new_tokens=new_tokens, min_new_tokens=new_tokens, use_cache=True,
                         pad_token_id=pad_token_id, temperature=None, top_p=None, top_k=None)
    return int(out.shape[1] - ids.shape[1])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_efficiency(model, prompt_ids: Sequence[torch.Tensor], *, new_tokens: int = 64, warmup: int = 1,
                       label: str = "") -> dict[str, Any]:
    """One efficiency record of ``model`` (on its current device) over ``prompt_ids`` (1-D or (1, n) each)."""
    if not prompt_ids or new_tokens < 1 or warmup < 0:
        raise ValueError("need prompts, new_tokens >= 1 and warmup >= 0")
    device = next(model.parameters()).device
    prompts = [p.reshape(1, -1).to(device) for p in prompt_ids]
    pad = model.config.pad_token_id
    pad = pad if pad is not None else (model.config.eos_token_id if isinstance(model.config.eos_token_id, int) else 0)
    was_training = model.training
    model.eval()
    for _ in range(warmup):
        for p in prompts:
            _generate(model, p, new_tokens, pad)
    _sync(device)
    cuda = device.type == "cuda"
    peak_reset, rss_before = False, 0
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    else:
        peak_reset = _reset_peak_rss()
        rss_before = (_status_bytes("VmRSS") if peak_reset else None) or _peak_rss()
    seconds, generated = 0.0, 0
    for p in prompts:
        _sync(device)
        t0 = time.perf_counter()
        generated += _generate(model, p, new_tokens, pad)
        _sync(device)
        seconds += time.perf_counter() - t0
    model.train(was_training)
    p_bytes = parameter_bytes(model)
    record: dict[str, Any] = {
        "label": label, "device": "CUDA" if cuda else "CPU",
        "device_name": torch.cuda.get_device_name(device) if cuda else "CPU",
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""), "torch_threads": torch.get_num_threads(),
        "n_layers": arch.num_layers(model), "n_params": arch.count_parameters(model), "param_bytes": p_bytes,
        "n_prompts": len(prompts), "prompt_tokens": sum(int(p.shape[1]) for p in prompts),
        "new_tokens_per_prompt": new_tokens, "generated_tokens": generated, "warmup_passes": warmup,
        "seconds": seconds, "tokens_per_s": generated / seconds if seconds > 0 else float("nan"),
    }
    if cuda:
        peak = int(torch.cuda.max_memory_allocated(device))
        record |= {"memory_kind": "cuda_max_allocated", "memory_bytes": peak}
    else:
        delta = max(0, _peak_rss() - rss_before)
        record |= {"memory_kind": "cpu_params+peak_rss_delta", "peak_rss_delta_bytes": delta,
                   "peak_rss_reset": peak_reset, "memory_bytes": p_bytes + delta}
    record["memory_mib"] = record["memory_bytes"] / MiB
    return record


RATIO_FIELDS = {"memory_bytes": "memory_ratio", "tokens_per_s": "speed_ratio", "n_params": "param_ratio",
                "param_bytes": "param_bytes_ratio"}


def efficiency_ratios(record: dict[str, Any], dense: dict[str, Any]) -> dict[str, Any]:
    """``{memory_ratio, speed_ratio, param_ratio, param_bytes_ratio, slower_than_dense}`` = record / dense.

    ``slower_than_dense`` is LaCo's ↓ mark.  Both records must come from the same device kind
    and memory measure (else the ratio means nothing).
    """
    for key in ("device", "memory_kind", "new_tokens_per_prompt", "n_prompts"):
        if record.get(key) != dense.get(key):
            raise ValueError(f"records differ in {key!r}: {record.get(key)!r} vs dense {dense.get(key)!r}")
    out: dict[str, Any] = {name: record[k] / dense[k] if dense[k] else float("nan") for k, name in RATIO_FIELDS.items()}
    out["slower_than_dense"] = bool(record["tokens_per_s"] < dense["tokens_per_s"])
    return out


def efficiency_prompts(rows: Sequence[str], tokenizer, n_prompts: int, prompt_tokens: int) -> list[torch.Tensor]:
    """The fixed prompts: the first ``n_prompts`` rows (in corpus order) that are not WikiText headings
    (`` = Title = ``) and tokenize to at least ``prompt_tokens`` tokens, each cut to its first
    ``prompt_tokens`` tokens (the tokenizer's own special tokens included).  English Wikipedia as in
    LaCo Tables 5/20; the selection is ours (LaCo gives no count or length)."""
    if n_prompts < 1 or prompt_tokens < 1:
        raise ValueError(f"need n_prompts >= 1 and prompt_tokens >= 1, got {n_prompts}, {prompt_tokens}")
    out: list[torch.Tensor] = []
    for row in rows:
        text = row.strip()
        if not text or text.startswith("="):
            continue
        ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
        if ids.shape[0] >= prompt_tokens:
            out.append(ids[:prompt_tokens].clone())
            if len(out) == n_prompts:
                return out
    raise ValueError(f"only {len(out)} of {len(rows)} rows have >= {prompt_tokens} tokens; {n_prompts} needed")


def measure_checkpoint(ckpt_dir: str | Path, rows: Sequence[str], *, n_prompts: int, prompt_tokens: int,
                       new_tokens: int, warmup: int, dtype: str = "auto", device: str = "auto",
                       label: str = "") -> dict[str, Any]:
    """Load the checkpoint in ``ckpt_dir`` with the project's loader (uneven-width checkpoints too) and
    :func:`measure_efficiency` it on :func:`efficiency_prompts` of ``rows``.  ``dtype`` ``auto`` = bf16 on
    CUDA (LaCo's setting), fp32 on CPU."""
    from ..models.sources import load_model

    model, tok = load_model(ckpt_dir, dtype=dtype, device=device)
    prompts = efficiency_prompts(rows, tok, n_prompts, prompt_tokens)
    record = measure_efficiency(model, prompts, new_tokens=new_tokens, warmup=warmup, label=label)
    record["prompt_tokens_each"] = prompt_tokens
    return record
