"""The MKA similarity stage end to end: prompts → layer inputs → embeddings → NPIB (docs/methods/mka.md).

Layers are processed one depth at a time (the embeddings of depth l are computed
as soon as the prompts' inputs of layer l exist), so memory holds one depth of
activations, never all layers (the released code keeps all of them).  One
forward serves every requested kernel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .activations import layer_inputs, tokenize_prompts
from .manifold import layer_embedding
from .npib import npib_matrix


@dataclass(frozen=True)
class SimilaritySettings:
    sigma: float = 8.0
    alpha: float = 0.5
    dim: int = 2
    max_tokens: int = 512
    n_neighbors: int = 5
    k_entropy: int = 50
    seed: int | str = 10  # KSG jitter: reseeded per call, or "released" (the code's global RNG after set_seed(1))


@dataclass
class SimilarityResult:
    kernel: str
    npib: np.ndarray                 # (L, L)
    embeddings: list[np.ndarray]     # per layer, (N, dim) rank-normalised
    info: dict[str, Any]

    def embeddings_frame(self, model: str = "") -> pd.DataFrame:
        rows = []
        for l, E in enumerate(self.embeddings):
            for s in range(E.shape[0]):
                rows.append({"model": model, "kernel": self.kernel, "layer": l, "sample": s,
                             **{f"e{k}": float(E[s, k]) for k in range(E.shape[1])}})
        return pd.DataFrame(rows)


def mka_similarity(model, tokenizer, prompts: Sequence[str], settings: SimilaritySettings,
                   kernels: Sequence[str] = ("described",), device=None) -> dict[str, SimilarityResult]:
    """NPIB matrix of ``model``'s layers on ``prompts``, per diffusion kernel."""
    ids = tokenize_prompts(tokenizer, prompts, settings.max_tokens)
    embeddings: dict[str, list[np.ndarray]] = {k: [] for k in kernels}

    def on_depth(l: int, states) -> None:
        for k in kernels:
            embeddings[k].append(layer_embedding(states, k, sigma=settings.sigma, alpha=settings.alpha,
                                                 dim=settings.dim, max_tokens=settings.max_tokens))

    forwards = layer_inputs(model, ids, on_depth, device=device)
    lengths = [int(x.shape[1]) for x in ids]
    out = {}
    for k in kernels:
        S = npib_matrix(embeddings[k], settings.n_neighbors, settings.k_entropy, settings.seed)
        info = {**asdict(settings), "kernel": k, "n_prompts": len(ids), "tokens": sum(lengths),
                "max_prompt_tokens": max(lengths), "layer_forwards": forwards,
                "k_entropy_used": min(settings.k_entropy, len(ids) - 1), "nan_entries": int(np.isnan(S).sum())}
        out[k] = SimilarityResult(kernel=k, npib=S, embeddings=embeddings[k], info=info)
    return out
