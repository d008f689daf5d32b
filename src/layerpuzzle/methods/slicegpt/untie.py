"""Untying the LM head from the token embedding (SmolLM2, Qwen3 small models).

SliceGPT rotates the embedding by Q_0 (its rows live on the residual stream) and folds the final norm into
the LM head, which then reads the last layer's basis: the two matrices stop being equal, so a tied model
gets its own ``lm_head.weight`` copy first and ``config.tie_word_embeddings`` is set to false; both are
counted in the parameter total (:mod:`.budget`).
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def untie_embeddings(model) -> bool:
    """Give the LM head its own copy of the embedding matrix if the two are tied; return whether they were."""
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head.weight is emb.weight or head.weight.data_ptr() == emb.weight.data_ptr()
    if tied:
        head.weight = nn.Parameter(emb.weight.detach().clone())
    model.config.tie_word_embeddings = False
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    text_config.tie_word_embeddings = False
    return bool(tied)
