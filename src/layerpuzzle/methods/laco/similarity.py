"""LaCo's acceptance criterion (docs/methods/laco.md, notebook ``cal_last_hidden_sim``).

For each calibration sentence separately (the tokenizer's default special
tokens — BOS where the tokenizer adds one), take the last hidden state *after
the final norm* (HF ``hidden_states[-1]``) of the original dense model and of
the candidate, flatten the (seq_len × hidden) matrix into one vector and take
one cosine; the criterion is the mean over sentences. The notebook runs the
sentences one at a time (batch 1, no padding); here they are batched with right
padding and only each sentence's own positions are used, which under causal
attention gives the same states up to float rounding:

    sim = (1/N) Σ_s cos(vec(norm(H_dense^(L)(s))), vec(norm(H_cand^(L)(s))))

A candidate is a list of decoder layers run over the *dense* model's embeddings,
rotary embeddings, masks and final norm (:class:`SentenceProbe`), so no model
copy is ever made; the inputs of every layer of the current stack are cached, and
a candidate that changes the stack from layer ``l`` on re-runs only layers ``l..``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...engine.runner import Hidden, LayerwiseRunner


def flat_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine between two tensors flattened to vectors (fp64)."""
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0, eps=1e-12))


class SentenceProbe:
    """Layer-at-a-time forwards of a layer stack over all calibration sentences at once.

    The sentences are right-padded into one batch.  Under the causal mask a
    token attends only to itself and earlier tokens, and the rotary positions
    start at 0 for every row, so the states of a sentence's real tokens are those
    of its own batch-1, unpadded forward (up to float rounding of the batched
    matrix products); the padding positions are cut off before the cosine.

    ``stack`` arguments are lists of ``(layer module, type index)``: the type index
    is the original layer index whose ``config.layer_types`` entry (full or
    sliding attention) the module uses.
    """

    def __init__(self, model, tokenizer, sentences: Sequence[str], device=None):
        if not sentences:
            raise ValueError("LaCo needs at least one calibration sentence")
        ids = [tokenizer(s, return_tensors="pt").input_ids[0] for s in sentences]
        self.lengths = [int(x.numel()) for x in ids]
        batch = torch.zeros(len(ids), max(self.lengths), dtype=ids[0].dtype)
        for i, x in enumerate(ids):
            batch[i, : x.numel()] = x
            batch[i, x.numel():] = x[-1]  # any token: padding positions are never read
        self.runner = LayerwiseRunner(model, batch, batch_size=len(ids),
                                      device=device or next(model.parameters()).device)

    @property
    def layer_forwards(self) -> int:
        return self.runner.layer_forwards

    def layer_inputs(self, stack: Sequence[tuple[nn.Module, int]]) -> list[Hidden]:
        """The inputs ``h[0..n]`` of every layer of ``stack`` (``h[n]`` = its raw output)."""
        h = self.runner.embed()
        states = [h]
        for module, type_index in stack:
            h = self.runner.layer(type_index, h, module=module)
            states.append(h)
        return states

    def outputs(self, stack: Sequence[tuple[nn.Module, int]], start: int = 0,
                inputs: list[Hidden] | None = None) -> list[torch.Tensor]:
        """Per sentence, the (n_tokens, hidden) final-norm last hidden state of ``stack`` run from layer ``start``.

        ``inputs[start]`` (from :meth:`layer_inputs` of a stack that agrees with
        ``stack`` below ``start``) is the cached input of layer ``start``.
        """
        h = inputs[start] if inputs is not None else self.runner.embed()
        for module, type_index in stack[start:]:
            h = self.runner.layer(type_index, h, module=module)
        out = self.runner.final_norm(h)[0]
        return [out[i, :n] for i, n in enumerate(self.lengths)]

    @staticmethod
    def similarity(reference: Sequence[torch.Tensor], candidate: Sequence[torch.Tensor]) -> float:
        """Mean over sentences of the flattened-output cosine."""
        return sum(flat_cosine(a, b) for a, b in zip(reference, candidate)) / len(reference)
