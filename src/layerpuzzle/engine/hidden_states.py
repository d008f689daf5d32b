"""Collect the residual stream of every depth over calibration token ids.

Notation as in docs/layer_scores.md: ``h[k]`` is the input of decoder layer ``k``
(``h[0]`` = embeddings) and ``h[L]`` the last layer's output, ``raw`` or after the
model's final norm (``final_norm``, what HF ``hidden_states[-1]`` holds).  So the
outputs of the layers are ``h[1..L]`` and MKA's layer inputs are ``h[0..L-1]``.

Sequences of different lengths are right-padded into one batch (the padding
token repeats the last real token); under causal attention with positions
starting at 0 the real tokens' states equal those of the unpadded forward up to
float rounding, and the padding positions are cut off.  Every returned depth is
one ``(n_tokens, hidden)`` fp32 CPU tensor: the real tokens of all sequences,
sequence after sequence.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..models import architecture as arch
from .layer_scores import LAST_LAYER_OUTPUT
from .runner import Hidden, LayerwiseRunner

TokenIds = torch.Tensor | Sequence[torch.Tensor]


def pad_right(ids: TokenIds) -> tuple[torch.Tensor, list[int]]:
    """``(W, S)`` ids and each row's real length; 1-D (or ``(1, n)``) sequences are right-padded."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 2:
            raise ValueError(f"token ids must be (windows, seq_len), got shape {tuple(ids.shape)}")
        return ids, [int(ids.shape[1])] * int(ids.shape[0])
    rows = [x.reshape(-1) for x in ids]
    if not rows or min(r.numel() for r in rows) == 0:
        raise ValueError("need at least one non-empty token sequence")
    lengths = [int(r.numel()) for r in rows]
    width = max(lengths)
    batch = torch.stack([torch.cat([r, r[-1:].expand(width - r.numel())]) for r in rows])
    return batch, lengths


def real_tokens(hidden: Hidden, lengths: Sequence[int]) -> torch.Tensor:
    """Concatenate the real (unpadded) token states of a runner's batches into ``(n_tokens, D)`` fp32 CPU."""
    rows = [row for h in hidden for row in h]
    return torch.cat([row[:n].float().cpu() for row, n in zip(rows, lengths)])


def make_runner(model, ids: TokenIds, batch_size: int = 8, device=None) -> tuple[LayerwiseRunner, list[int]]:
    """A :class:`LayerwiseRunner` over the right-padded ``ids`` and the real lengths."""
    batch, lengths = pad_right(ids)
    device = device if device is not None else next(model.parameters()).device
    return LayerwiseRunner(model, batch, batch_size=batch_size, device=device), lengths


@torch.no_grad()
def collect_hidden_states(model, ids: TokenIds, *, last_layer_output: str = "raw", depths: Sequence[int] | None = None,
                          batch_size: int = 8, device=None) -> list[torch.Tensor]:
    """``[h[k] for k in depths]`` (default ``0..L``), each ``(n_tokens, D)`` fp32 on the CPU.

    ``ids``: a ``(W, S)`` tensor or a list of 1-D sequences (right-padded here).
    ``last_layer_output``: ``raw`` or ``final_norm`` for ``h[L]``.
    """
    if last_layer_output not in LAST_LAYER_OUTPUT:
        raise ValueError(f"last_layer_output={last_layer_output!r}; allowed: {', '.join(LAST_LAYER_OUTPUT)}")
    n_layers = arch.num_layers(model)
    wanted = list(range(n_layers + 1)) if depths is None else [int(k) for k in depths]
    bad = [k for k in wanted if not 0 <= k <= n_layers]
    if bad:
        raise ValueError(f"depths {bad} out of range 0..{n_layers}")
    runner, lengths = make_runner(model, ids, batch_size, device)
    kept: dict[int, torch.Tensor] = {}
    h = runner.embed()
    if 0 in wanted:
        kept[0] = real_tokens(h, lengths)
    for l in range(max(wanted)):
        h = runner.layer(l, h)
        k = l + 1
        if k in wanted:
            out = runner.final_norm(h) if k == n_layers and last_layer_output == "final_norm" else h
            kept[k] = real_tokens(out, lengths)
    return [kept[k] for k in wanted]


@torch.no_grad()
def next_token_logits(model, final_states: torch.Tensor) -> torch.Tensor:
    """``lm_head(h)`` in fp32 for ``(n_tokens, D)`` final-norm states (``collect_hidden_states(..., 'final_norm')``)."""
    head = model.lm_head
    w = head.weight
    return head(final_states.to(device=w.device, dtype=w.dtype)).float().cpu()
