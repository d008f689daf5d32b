"""Inputs of every decoder layer on the MKA prompts (baselines.md §6 step 2).

The released code runs one full forward per (prompt, layer) and keeps
``hidden_states[l]`` — the *input* of decoder layer ``l`` (``l = 0`` is the
embedding output; the last layer's output is never used) — zero-padded or cut
to the first ``max_tokens`` (512) tokens.  Here every prompt is cut to
``max_tokens`` tokens first (causal attention makes the first 512 states of the
full prompt identical) and all prompts are pushed through the stack layer by
layer, each with batch 1 and no padding; ``on_depth(l, states)`` receives the
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
                 device=None) -> int:
    """Call ``on_depth(l, [h_s^(l)])`` for every layer ``l``; returns the number of layer forwards."""
    runners = [LayerwiseRunner(model, ids, batch_size=1, device=device or next(model.parameters()).device)
               for ids in prompt_ids]
    hidden = [r.embed() for r in runners]
    n = arch.num_layers(model)
    for l in range(n):
        on_depth(l, [h[0][0].float() for h in hidden])
        if l < n - 1:
            hidden = [r.layer(l, h) for r, h in zip(runners, hidden)]
    return sum(r.layer_forwards for r in runners)
