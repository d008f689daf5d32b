"""Diffusion-kernel manifold embedding of one layer's activations (docs/methods/mka.md steps 3–4).

Each calibration prompt ``s`` gives a point ``x_s`` = the layer input, zero-padded
to ``max_tokens`` × hidden (512 × H) and flattened.  With the Euclidean
distances ``D``:

    K    = exp(−(D / σ)^0.5)                        (σ = σ_K = 8; MKA Eq. 2 as coded)
    K1   = K / (p pᵀ)^α,   p = column sums of K     (α = 0.5)
    A    = K1 / (v vᵀ),    v = sqrt(column sums of K1)
    U    = top d+1 left singular vectors of A,  U ← U / U[:, 0]
    E    = U[:, 1..d]                               (d = 2)

then rank normalisation per column, ``argsort(argsort(E)) / N`` ∈ [0, 1).  The
released code also regularises the diagonal of A while cond(A) = ∞ and clips
|A| < 1e-12 to 1e-12; both are kept.

Kernel ``described``: ``D`` between samples, as above.  Kernel ``released``
reproduces ``diffusionKernel``'s bug: the 3-D (N, 512, H) array is cut into
sample chunks of c = largest divisor of N that is ≤ 100, each chunk is reshaped
to (c·512, H) *tokens*, and only the first c×c block of its distance generator
is used, so

    D[i+p, j+q] = ‖h_{i, token p} − h_{j, token q}‖   (i, j = first sample of each chunk; p, q < c)

with the diagonal p = q of every block set to 0.  Only the first c tokens of
N / c samples enter the kernel.  Distances are computed in fp64 (the code: fp32).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

KERNELS = ("described", "released")
Kernel = Literal["described", "released"]


def adaptive_chunk_size(total: int, preferred: int = 100) -> int:
    """The largest divisor of ``total`` that is ≤ ``preferred`` (MKA ``adaptive_chunk_size``)."""
    for size in range(min(preferred, total), 0, -1):
        if total % size == 0:
            return size
    return 1


def _token(states: Sequence[torch.Tensor], s: int, t: int, max_tokens: int) -> torch.Tensor:
    h = states[s]
    if t < min(h.shape[0], max_tokens):
        return h[t].double()
    return torch.zeros(h.shape[-1], dtype=torch.float64)


def sample_distances(states: Sequence[torch.Tensor], max_tokens: int = 512, token_chunk: int = 32) -> np.ndarray:
    """(N, N) Euclidean distances between the zero-padded, flattened (max_tokens × H) samples."""
    n = len(states)
    length = min(max_tokens, max(h.shape[0] for h in states))
    hidden = states[0].shape[-1]
    gram = torch.zeros(n, n, dtype=torch.float64)
    for t0 in range(0, length, token_chunk):
        t1 = min(length, t0 + token_chunk)
        block = torch.zeros(n, t1 - t0, hidden, dtype=torch.float64)
        for s, h in enumerate(states):
            part = h[t0:min(t1, h.shape[0], max_tokens)]
            block[s, : part.shape[0]] = part.double().cpu()
        flat = block.reshape(n, -1)
        gram += flat @ flat.T
    sq = torch.diagonal(gram)
    d2 = (sq[:, None] + sq[None, :] - 2 * gram).clamp_min(0)
    d = d2.sqrt()
    d.fill_diagonal_(0.0)
    return d.numpy()


def released_token_distances(states: Sequence[torch.Tensor], max_tokens: int = 512) -> np.ndarray:
    """(N, N) 'distances' of the released ``diffusionKernel`` (see the module docstring).

    Row r of a chunk reshaped to (c·max_tokens, H) is token ``r % max_tokens`` of
    sample ``i + r // max_tokens``; with c ≤ 100 < 512 all c rows are tokens of sample i.
    """
    n = len(states)
    c = adaptive_chunk_size(n)
    rows = {i: torch.stack([_token(states, i + r // max_tokens, r % max_tokens, max_tokens) for r in range(c)])
            for i in range(0, n, c)}
    out = np.zeros((n, n), dtype=np.float64)
    for i in range(0, n, c):
        for j in range(0, n, c):
            block = torch.cdist(rows[i], rows[j])
            block.fill_diagonal_(0.0)
            out[i:i + c, j:j + c] = block.numpy()
    return out


def diffusion_kernel(distances: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """K = exp(−(D/σ)^0.5)."""
    return np.exp(-np.sqrt(np.asarray(distances, dtype=np.float64) / sigma))


def diffusion_embedding(kernel: np.ndarray, alpha: float = 0.5, dim: int = 2) -> np.ndarray:
    """(N, dim) diffusion-map coordinates of a kernel matrix (normalisations of the module docstring)."""
    K = np.asarray(kernel, dtype=np.float64)
    p = K.sum(axis=0)
    K1 = K / (p * p.reshape(-1, 1)) ** alpha
    v = np.sqrt(K1.sum(axis=0))
    A = K1 / np.outer(v, v)
    reg, tries = 1e-6, 0
    while np.isinf(np.linalg.cond(A)) and tries < 10:
        A = A + np.eye(A.shape[0]) * reg
        reg *= 10
        tries += 1
    A = np.nan_to_num(A)
    A[np.abs(A) < 1e-12] = 1e-12
    U, _, _ = np.linalg.svd(A, full_matrices=False)
    U = U[:, : dim + 1].copy()
    U[:, 0] = np.where(U[:, 0] == 0, 1e-8, U[:, 0])
    U = U / U[:, :1]
    return U[:, 1 : dim + 1]


def rank_normalise(embedding: np.ndarray) -> np.ndarray:
    """Per-column ranks / N after NaN/inf → 0 (MKA ``load_embeddings``)."""
    E = np.nan_to_num(np.asarray(embedding, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.argsort(np.argsort(E, axis=0), axis=0) / E.shape[0]


def layer_embedding(states: Sequence[torch.Tensor], kernel: Kernel = "described", *, sigma: float = 8.0,
                    alpha: float = 0.5, dim: int = 2, max_tokens: int = 512) -> np.ndarray:
    """The rank-normalised (N, dim) manifold embedding of one layer's inputs."""
    if kernel == "described":
        D = sample_distances(states, max_tokens)
    elif kernel == "released":
        D = released_token_distances(states, max_tokens)
    else:
        raise ValueError(f"MKA kernel {kernel!r}; allowed: {', '.join(KERNELS)}")
    return rank_normalise(diffusion_embedding(diffusion_kernel(D, sigma), alpha, dim))
