"""Calibration sets: N text rows, shuffled with a seed, joined and cut into windows.

This is the CoMe / SLEB code convention (come.md §1.2): the corpus rows are
permuted with ``numpy.random.default_rng(seed).permutation`` (exactly what
``datasets.Dataset.shuffle(seed)`` does), the first N rows are joined with
``"\\n\\n"`` and tokenized as one sequence, and the sequence is cut into
consecutive non-overlapping windows of ``seq_len`` tokens (the remainder is
dropped; with fewer than ``seq_len`` tokens the whole sequence is one window).
So "N samples" means N *text rows*, not N windows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationSpec:
    dataset: str
    n: int
    seed: int
    seq_len: int

    @property
    def id(self) -> str:
        return f"{self.dataset}-n{self.n}-s{self.seed}-len{self.seq_len}"

    @staticmethod
    def parse(calib_id: str) -> "CalibrationSpec":
        try:
            dataset, n, s, length = calib_id.rsplit("-", 3)
            return CalibrationSpec(dataset, int(n[1:]), int(s[1:]), int(length[3:]))
        except ValueError as exc:
            raise ValueError(f"calibration id {calib_id!r} is not of the form <dataset>-n<N>-s<seed>-len<L>") from exc


def select_rows(rows: list[str], n: int, seed: int) -> list[str]:
    """The first ``n`` rows after a seeded permutation (HF ``Dataset.shuffle`` semantics)."""
    if n <= 0:
        raise ValueError(f"calibration n must be > 0, got {n}")
    order = np.random.default_rng(seed).permutation(len(rows))
    if n > len(rows):
        log.warning("asked for %d rows but the corpus has %d: using all of them", n, len(rows))
    return [rows[i] for i in order[:n]]


def tokenize_windows(text: str, tokenizer, seq_len: int) -> torch.Tensor:
    """Token ids of ``text`` cut into (W, seq_len) non-overlapping windows."""
    ids = tokenizer(text, return_tensors="pt").input_ids[0]
    if ids.numel() < seq_len:
        log.warning("only %d tokens (< seq_len %d): one window of the full length", ids.numel(), seq_len)
        return ids.unsqueeze(0)
    n = ids.numel() // seq_len
    return ids[: n * seq_len].view(n, seq_len).clone()


def build_calibration(rows: list[str], tokenizer, spec: CalibrationSpec) -> tuple[torch.Tensor, dict[str, Any]]:
    chosen = select_rows(rows, spec.n, spec.seed)
    text = "\n\n".join(chosen)
    windows = tokenize_windows(text, tokenizer, spec.seq_len)
    n_tokens_total = len(tokenizer(text).input_ids)
    info = {**asdict(spec), "id": spec.id, "rows_used": len(chosen), "tokens_total": n_tokens_total,
            "windows": int(windows.shape[0]), "tokens_in_windows": int(windows.numel())}
    log.info("calibration %s: %d rows -> %d tokens -> %d windows of %d", spec.id, len(chosen),
             n_tokens_total, windows.shape[0], windows.shape[1])
    return windows, info


def save_calibration(path: str | Path, windows: torch.Tensor, info: dict[str, Any]) -> None:
    # one key of sorted JSON: several metadata keys come out in a different order each run
    meta = {"calibration": json.dumps(info, sort_keys=True, default=str)}
    with atomic_file(path) as tmp:
        save_file({"input_ids": windows.contiguous(), "attention_mask": torch.ones_like(windows)}, str(tmp),
                  metadata=meta)


def load_calibration(path: str | Path) -> torch.Tensor:
    return load_file(str(path))["input_ids"]


def calibration_info(path: str | Path) -> dict[str, Any]:
    """What :func:`save_calibration` recorded about a calibration set (rows, tokens, source, notes)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    return json.loads(meta["calibration"]) if "calibration" in meta else meta
