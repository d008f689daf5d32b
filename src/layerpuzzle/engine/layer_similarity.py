"""Layer × layer similarity matrices of hidden states (MKA Figs. 3 and 5; LaCo Fig. 5a).

``states`` is a list of per-layer ``(T, D)`` tensors over the same ``T`` calibration
tokens (e.g. the layer outputs ``h[1..L]`` of :func:`~.hidden_states.collect_hidden_states`).
``h_{i,t}`` is token ``t`` of layer ``i``.

* ``cosine``      ``S_ij = (1/T) Σ_t cos(h_{i,t}, h_{j,t})``               (mean over tokens, as BI; MKA Fig. 5)
* ``euclidean``   ``E_ij = (1/T) Σ_t ‖h_{i,t} − h_{j,t}‖₂``                (a distance: 0 on the diagonal)
* ``mahalanobis`` ``M_ij = sqrt(δᵀ (Σ_ij + λI)⁻¹ δ)``, ``δ = μ_i − μ_j``,
  ``Σ_ij = (Σ_i + Σ_j)/2`` the pooled (unbiased) token covariance of the two layers,
  ``λ = ridge · tr(Σ_ij)/D`` (a distance between the layers' token distributions)

MKA Fig. 5 names cosine, Mahalanobis, Euclidean, t-SNE and autoencoder measures
without formulas; the token pairing of cosine/Euclidean and the distribution form of
Mahalanobis (pooled covariance, relative ridge 1e-3) are our reading.  Fig. 3
("before and after merging") is the same matrix on the merged model's states:
:func:`merge_comparison`.  LaCo Fig. 5a is the superdiagonal of the cosine
matrix over ``h[0..L]``: :func:`adjacent_cosine` (= 1 − BI per layer).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .block_influence import block_influence
from .hidden_states import TokenIds, collect_hidden_states

MEASURES = ("cosine", "euclidean", "mahalanobis")
WHICH = ("outputs", "inputs", "all")


def _flat(states: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per-layer (T, D) views of (T, D) (or (..., D)) states, checking they share T and D."""
    flat = [s.reshape(-1, s.shape[-1]) for s in states]
    if len({tuple(f.shape) for f in flat}) != 1:
        raise ValueError(f"layer states differ in shape: {sorted({tuple(f.shape) for f in flat})}")
    return flat


def _token_blocks(states: Sequence[torch.Tensor], token_chunk: int) -> Iterator[torch.Tensor]:
    """(L, c, D) fp64 CPU blocks of ``c ≤ token_chunk`` consecutive tokens (bounded memory)."""
    flat = _flat(states)
    for t0 in range(0, flat[0].shape[0], token_chunk):
        yield torch.stack([f[t0:t0 + token_chunk].double().cpu() for f in flat])


def cosine_matrix(states: Sequence[torch.Tensor], token_chunk: int = 1024) -> np.ndarray:
    """``S_ij = mean_t cos(h_{i,t}, h_{j,t})`` (a zero-norm token has cosine 0, as ``token_cosine``)."""
    total, n = None, 0
    for block in _token_blocks(states, token_chunk):
        H = F.normalize(block, dim=-1, eps=1e-8)
        part = torch.einsum("itd,jtd->ij", H, H)
        total, n = (part if total is None else total + part), n + block.shape[1]
    return (total / n).numpy()


def euclidean_matrix(states: Sequence[torch.Tensor], token_chunk: int = 1024) -> np.ndarray:
    """``E_ij = mean_t ‖h_{i,t} − h_{j,t}‖₂`` (exact per-token distances, fp64)."""
    total, n = None, 0
    for block in _token_blocks(states, token_chunk):
        H = block.transpose(0, 1)  # (c, L, D)
        part = torch.cdist(H, H, compute_mode="donot_use_mm_for_euclid_dist").sum(0)
        total, n = (part if total is None else total + part), n + block.shape[1]
    return (total / n).numpy()


def mahalanobis_matrix(states: Sequence[torch.Tensor], ridge: float = 1e-3, token_chunk: int = 1024) -> np.ndarray:
    """``M_ij = sqrt((μ_i−μ_j)ᵀ ((Σ_i+Σ_j)/2 + λI)⁻¹ (μ_i−μ_j))``, ``λ = ridge · mean diag``."""
    flat = _flat(states)
    L, (T, D) = len(flat), flat[0].shape
    if T < 2:
        raise ValueError("the Mahalanobis distance needs at least 2 tokens")
    mu = torch.stack([f.double().cpu().mean(0) for f in flat])
    cov = torch.zeros(L, D, D, dtype=torch.float64)
    for block in _token_blocks(flat, token_chunk):
        X = block - mu[:, None]
        cov += torch.einsum("ltd,lte->lde", X, X)
    cov /= T - 1
    out = np.zeros((L, L))
    for i in range(L):
        for j in range(i + 1, L):
            pooled = (cov[i] + cov[j]) / 2
            pooled = pooled + ridge * torch.diagonal(pooled).mean() * torch.eye(D, dtype=pooled.dtype)
            delta = (mu[i] - mu[j]).unsqueeze(1)
            q = float((delta.T @ torch.linalg.solve(pooled, delta)).squeeze())
            out[i, j] = out[j, i] = max(q, 0.0) ** 0.5
    return out


def similarity_matrix(states: Sequence[torch.Tensor], measure: str = "cosine", **kw) -> np.ndarray:
    """The (L, L) matrix of ``measure`` (one of :data:`MEASURES`; distances for all but cosine)."""
    fns = {"cosine": cosine_matrix, "euclidean": euclidean_matrix, "mahalanobis": mahalanobis_matrix}
    if measure not in fns:
        raise ValueError(f"similarity measure {measure!r}; allowed: {', '.join(MEASURES)}")
    return fns[measure](states, **kw)


def adjacent_cosine(states: Sequence[torch.Tensor]) -> list[float]:
    """``[mean_t cos(states[k]_t, states[k+1]_t)]``: over ``h[0..L]`` this is ``1 − BI_l`` per layer (LaCo Fig. 5a)."""
    return [1.0 - block_influence(a, b) for a, b in zip(states[:-1], states[1:])]


def select_depths(states: Sequence[torch.Tensor], which: str) -> list[torch.Tensor]:
    """From ``h[0..L]``: the layer ``outputs`` ``h[1..L]``, the ``inputs`` ``h[0..L-1]`` or ``all``."""
    if which not in WHICH:
        raise ValueError(f"which={which!r}; allowed: {', '.join(WHICH)}")
    return list(states[1:] if which == "outputs" else states[:-1] if which == "inputs" else states)


def model_similarity(model, ids: TokenIds, measures: Sequence[str] = ("cosine", "euclidean"), *,
                     which: str = "outputs", last_layer_output: str = "raw", batch_size: int = 8,
                     device=None) -> dict[str, np.ndarray]:
    """``{measure: (L, L) matrix}`` of ``model``'s layers on the calibration ``ids`` (one forward pass)."""
    states = collect_hidden_states(model, ids, last_layer_output=last_layer_output, batch_size=batch_size,
                                   device=device)
    picked = select_depths(states, which)
    return {m: similarity_matrix(picked, m) for m in measures}


def merge_comparison(dense, merged, ids: TokenIds, measures: Sequence[str] = ("cosine", "euclidean"),
                     **kw) -> dict[str, dict[str, np.ndarray]]:
    """MKA Fig. 3: ``{"before": model_similarity(dense), "after": model_similarity(merged)}`` on the same ids.

    The merged matrix is (L', L') for the merged model's L' layers.
    """
    return {"before": model_similarity(dense, ids, measures, **kw),
            "after": model_similarity(merged, ids, measures, **kw)}
