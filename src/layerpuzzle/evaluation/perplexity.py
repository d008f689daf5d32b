"""Perplexity with the SparseGPT/Wanda protocol (docs/evaluation.md).

The evaluation text is tokenized as one sequence and cut into non-overlapping
windows of ``seqlen`` tokens (stride ``seqlen``, remainder dropped).  Each
window is run alone (no attention mask); its loss is the mean next-token
cross-entropy over its ``seqlen - 1`` shifted tokens, multiplied by ``seqlen``:

    nll_w = seqlen · mean_{t=1..seqlen-1} CE(logits_{t-1}, x_t)
    PPL   = exp( Σ_w nll_w / (n_windows · seqlen) )

Text comes from ``layerpuzzle.data.text_sources.perplexity_text``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


@dataclass(frozen=True)
class PerplexityResult:
    """``ppl`` is nan when any window's loss is not finite (``n_nonfinite`` counts them)."""

    ppl: float
    nll_sum: float
    n_windows: int
    seqlen: int
    n_nonfinite: int

    def to_dict(self) -> dict:
        return asdict(self)


def window_tokens(text: str, tokenizer, seqlen: int, max_windows: int | None = None) -> torch.LongTensor:
    """Token windows ``(n, seqlen)`` of ``text`` tokenized as one sequence.

    The tokenizer is called as the protocol does (``tokenizer(text)``, special
    tokens included, e.g. LLaMA's leading BOS).  Windows are non-overlapping,
    the remainder is dropped and only the first ``max_windows`` are kept
    (C4: 256 windows of 2048 tokens).
    """
    if seqlen < 2:
        raise ValueError(f"seqlen must be at least 2 (one shifted target), got {seqlen}")
    ids = tokenizer(text, verbose=False)["input_ids"]
    n = len(ids) // seqlen
    if max_windows is not None:
        n = min(n, max_windows)
    if n == 0:
        raise ValueError(f"the text has {len(ids)} tokens, fewer than one window of seqlen={seqlen}")
    return torch.tensor(ids[: n * seqlen], dtype=torch.long).view(n, seqlen)


@torch.no_grad()
def window_nll(model, windows: torch.Tensor) -> torch.Tensor:
    """Summed NLL per window, float64 ``(B,)``: mean fp32 CE over the shifted tokens × seqlen."""
    logits = model(input_ids=windows, use_cache=False).logits
    targets = windows[:, 1:]
    ce = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    ).view(targets.shape)
    return ce.mean(dim=1).double() * windows.shape[1]


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return float("inf")


@torch.no_grad()
def perplexity(
    model,
    windows: torch.Tensor,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> PerplexityResult:
    """PPL of ``model`` on ``windows`` ``(n, seqlen)`` (docs/evaluation.md).

    ``device``: where to run (the model is moved there); default the model's device.
    Non-finite window losses are counted, never averaged away: if any, ``ppl`` is nan.
    """
    if windows.ndim != 2 or windows.shape[0] == 0:
        raise ValueError(f"windows must be a non-empty (n, seqlen) tensor, got shape {tuple(windows.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is not None:
        model.to(device)
    run_device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    n, seqlen = windows.shape
    nll = []
    starts = range(0, n, batch_size)
    for s in tqdm(starts, desc=f"perplexity ({n}x{seqlen})", disable=not progress, unit="batch"):
        nll.append(window_nll(model, windows[s : s + batch_size].to(run_device)).cpu())
    model.train(was_training)
    nll_t = torch.cat(nll)
    finite = torch.isfinite(nll_t)
    n_nonfinite = int((~finite).sum())
    nll_sum = float(nll_t.sum())
    ppl = _exp(nll_sum / (n * seqlen)) if n_nonfinite == 0 else float("nan")
    return PerplexityResult(ppl=ppl, nll_sum=nll_sum, n_windows=n, seqlen=seqlen, n_nonfinite=n_nonfinite)
