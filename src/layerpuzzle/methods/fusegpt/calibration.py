"""FuseGPT's calibration windows (docs/methods/fusegpt_mi.md; GPTQ-style ``get_wikitext2``).

The corpus rows are joined with ``"\\n\\n"`` and tokenized once; then, with
``random.seed(seed)``, ``n`` windows are drawn as
``i = random.randint(0, T − seq_len − 1); window = ids[i : i + seq_len]``
(overlaps allowed).  CoMe Table 5: WikiText-2, 32 windows, seed 10 (2048 tokens).
Offline, the mirror holds only the non-empty rows of the first 1 MB of the
WikiText-2 train split, so the joined text (and the windows) differ from the hub's.
"""

from __future__ import annotations

import random
from typing import Any

import torch


def random_windows(rows: list[str], tokenizer, n: int, seq_len: int, seed: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """(n, seq_len) token windows at random offsets of the joined corpus, and their starts."""
    ids = tokenizer("\n\n".join(rows), return_tensors="pt").input_ids[0]
    if ids.numel() <= seq_len + 1:
        raise ValueError(f"corpus has {ids.numel()} tokens, need more than seq_len + 1 = {seq_len + 1}")
    rng = random.Random(seed)
    starts = [rng.randint(0, ids.numel() - seq_len - 1) for _ in range(n)]
    windows = torch.stack([ids[s : s + seq_len] for s in starts]).clone()
    return windows, {"sampling": "random_windows", "n": n, "seq_len": seq_len, "seed": seed,
                     "corpus_tokens": int(ids.numel()), "starts": starts}
