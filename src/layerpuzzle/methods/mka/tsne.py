"""t-SNE instead of the diffusion map as MKA's per-layer manifold (MKA Fig. 5, "t-SNE" panel).

MKA Fig. 5 compares its NPIB matrix with matrices from other measures, among them
t-SNE, without saying how.  Our reading: the same points as MKA's manifold step
(each prompt's layer input, zero-padded to ``max_tokens`` × H and flattened; the
Euclidean distances of :func:`.manifold.sample_distances`), embedded by t-SNE
(van der Maaten & Hinton 2008) into ``dim`` = 2 dimensions instead of the diffusion
map, then rank-normalised and compared across layers by the same NPIB
(:func:`.npib.npib_matrix`).  Perplexity is capped at N − 1 (sklearn needs < N);
init ``random`` (``pca`` cannot start from precomputed distances); seeded; OpenMP
threads limited to ``torch.get_num_threads()``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from .manifold import rank_normalise, sample_distances


def tsne_embedding(distances: np.ndarray, dim: int = 2, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """(N, dim) t-SNE coordinates from an (N, N) distance matrix."""
    n = distances.shape[0]
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {n}")
    tsne = TSNE(n_components=dim, perplexity=min(perplexity, n - 1.0), metric="precomputed", init="random",
                random_state=seed, method="barnes_hut" if dim < 4 else "exact")
    with threadpool_limits(limits=torch.get_num_threads()):  # OpenMP threads = the rule's torch threads
        return tsne.fit_transform(np.asarray(distances, dtype=np.float64))


def tsne_layer_embedding(states: Sequence[torch.Tensor], *, dim: int = 2, perplexity: float = 30.0, seed: int = 0,
                         max_tokens: int = 512) -> np.ndarray:
    """The rank-normalised (N, dim) t-SNE embedding of one layer's per-prompt inputs (NPIB's input)."""
    return rank_normalise(tsne_embedding(sample_distances(states, max_tokens), dim, perplexity, seed))
