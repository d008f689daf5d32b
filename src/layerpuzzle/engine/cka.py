"""Centered kernel alignment (Kornblith et al., ICML 2019, Eqs. 3–5) between two representations.

``X`` (n × p₁) and ``Y`` (n × p₂) hold the same n examples (here: tokens) as rows.
With Gram matrices ``K``, ``L`` and the centering ``H = I − 11ᵀ/n``:

    HSIC(K, L) = tr(K H L H) / (n − 1)²
    CKA(K, L)  = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))

* linear: ``K = XXᵀ``; with column-centred ``X``, ``Y`` this is
  ``‖YᵀX‖_F² / (‖XᵀX‖_F · ‖YᵀY‖_F)`` (Kornblith Eq. 5), computed in feature space.
* RBF:    ``K_ij = exp(−‖x_i − x_j‖² / (2σ²))`` with ``σ² = threshold² · median(‖x_i − x_j‖²)``,
  the median over all n² entries (diagonal zeros included), as the authors' released
  ``rbf(x, threshold)``; ``threshold`` = 1 is the median heuristic (LaCo Table 14's
  "kernel CKA"; LaCo states no bandwidth).

Both are 1 for ``X = Y`` and invariant to orthogonal transforms and isotropic scaling
of either side (the RBF bandwidth scales with the distances).  Biased HSIC (not the
debiased estimator), computed in fp64.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_matrix(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1]).double().cpu()


def _check(X: torch.Tensor, Y: torch.Tensor) -> None:
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"CKA needs the same examples on both sides, got {X.shape[0]} and {Y.shape[0]} rows")
    if X.shape[0] < 2:
        raise ValueError("CKA needs at least 2 examples")


def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> float:
    """``‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F)`` on column-centred ``X``, ``Y`` (rows = examples)."""
    X, Y = _as_matrix(X), _as_matrix(Y)
    _check(X, Y)
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    num = torch.linalg.matrix_norm(Y.T @ X) ** 2
    den = torch.linalg.matrix_norm(X.T @ X) * torch.linalg.matrix_norm(Y.T @ Y)
    return float(num / den)


def rbf_gram(X: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """``exp(−D² / (2 · threshold² · median(D²)))`` for the squared distances ``D²`` between rows."""
    X = _as_matrix(X)
    dots = X @ X.T
    sq = torch.diagonal(dots)
    d2 = (sq[:, None] + sq[None, :] - 2 * dots).clamp_min(0)
    med = float(np.median(d2.numpy()))  # np.median, as the released code (mean of the two middles)
    if med <= 0:
        raise ValueError("RBF CKA: the median squared distance is 0 (more than half the examples coincide)")
    return torch.exp(-d2 / (2 * threshold ** 2 * med))


def gram_cka(K: torch.Tensor, L: torch.Tensor) -> float:
    """``tr(KHLH) / sqrt(tr(KHKH) tr(LHLH))`` for two (n × n) Gram matrices."""
    def center(G: torch.Tensor) -> torch.Tensor:
        G = G.double()
        return G - G.mean(0, keepdim=True) - G.mean(1, keepdim=True) + G.mean()

    Kc, Lc = center(K), center(L)
    return float((Kc * Lc).sum() / (torch.linalg.matrix_norm(Kc) * torch.linalg.matrix_norm(Lc)))


def rbf_cka(X: torch.Tensor, Y: torch.Tensor, threshold: float = 1.0) -> float:
    """CKA with RBF kernels, bandwidth by the median heuristic scaled by ``threshold``."""
    X, Y = _as_matrix(X), _as_matrix(Y)
    _check(X, Y)
    return gram_cka(rbf_gram(X, threshold), rbf_gram(Y, threshold))
