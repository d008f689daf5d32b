"""Inputs of every decoder layer on the MKA prompts (docs/methods/mka.md step 2).

The released code runs one full forward per (prompt, layer) and keeps
``hidden_states[l]`` — the *input* of decoder layer ``l`` (``l = 0`` is the
embedding output; the last layer's output is never used) — zero-padded or cut
to the first ``max_tokens`` (512) tokens.  Here every prompt is cut to
``max_tokens`` tokens first (causal attention makes the first 512 states of the
full prompt identical) and all prompts are pushed through the stack layer by
layer (right-padded batches, see :func:`layer_inputs`); ``on_depth(l, states)`` receives the
list of per-prompt (n_tokens_s, hidden) inputs of layer ``l``.  Padding to
``max_tokens`` is implicit: the kernels treat missing tokens as zero vectors.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ...engine.runner import LayerwiseRunner
from ...models import architecture as arch


def tokenize_prompts(tokenizer, texts: Sequence[str], max_tokens: int = 512) -> list[torch.Tensor]:
    """Token ids per prompt, no special tokens (the code sets ``add_bos_token=False``), cut to ``max_tokens``."""
    return [tokenizer(t, add_special_tokens=False, return_tensors="pt").input_ids[:, :max_tokens] for t in texts]


@torch.no_grad()
def layer_inputs(model, prompt_ids: Sequence[torch.Tensor], on_depth: Callable[[int, list[torch.Tensor]], None],
                 device=None, batch_size: int = 16) -> int:
    """Call ``on_depth(l, [h_s^(l)])`` for every layer ``l``; returns the number of layer forwards.

    Prompts are right-padded into batches of ``batch_size``: under the causal mask
    the real tokens' states equal those of the unpadded batch-1 forward of the
    code (up to float rounding), and the padding positions are cut off.
    """
    lengths = [int(x.shape[-1]) for x in prompt_ids]
    order = sorted(range(len(prompt_ids)), key=lambda i: -lengths[i])  # similar lengths share a batch
    runners = []
    for b in range(0, len(order), batch_size):
        chunk = [prompt_ids[i].reshape(-1) for i in order[b:b + batch_size]]
        ids = torch.stack([torch.cat([x, x[-1:].expand(max(map(len, chunk)) - len(x))]) for x in chunk])
        runners.append(LayerwiseRunner(model, ids, batch_size=len(chunk),
                                       device=device or next(model.parameters()).device))
    hidden = [r.embed() for r in runners]
    n = arch.num_layers(model)
    for l in range(n):
        rows = [row for h in hidden for row in h[0]]  # in `order`
        states: list[torch.Tensor] = [torch.empty(0)] * len(order)
        for row, i in zip(rows, order):
            states[i] = row[: lengths[i]].float()
        on_depth(l, states)
        if l < n - 1:
            hidden = [r.layer(l, h) for r, h in zip(runners, hidden)]
    return sum(r.layer_forwards for r in runners)
