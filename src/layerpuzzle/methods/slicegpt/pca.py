"""PCA of residual-stream signals (SliceGPT paper, section "A transformation per block").

For the signal X_ℓ,i (tokens × d) of calibration window i at a residual site ℓ the paper forms
``C_ℓ = Σ_i X_ℓ,iᵀ X_ℓ,i`` (uncentred, summed over windows and tokens) and takes ``Q_ℓ`` = its eigenvectors
sorted by eigenvalue, descending; keeping the first d' columns keeps the d' directions of largest energy.
As the reference code does, the sum runs in float64 and ``0.01·mean(diag C)`` is added to the diagonal before
the eigendecomposition (numerical damping; it does not change the eigenvectors of an exact C).
"""

from __future__ import annotations

import torch


class SecondMoment:
    """Running ``C = Σ Xᵀ X`` over batches of (batch, tokens, d) signals, in float64."""

    def __init__(self, dim: int):
        self.dim = dim
        self.C: torch.Tensor | None = None  # created on the device of the first signal
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
        if x.shape[-1] != self.dim:
            raise ValueError(f"signal width {x.shape[-1]} != {self.dim}")
        if self.C is None:
            self.C = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=x.device)
        self.C += x.T @ x
        self.tokens += x.shape[0]


def pca_basis(C: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """``(eigenvalues descending, Q)`` of ``C + damp·mean(diag C)·I``; ``Q``'s columns are the eigenvectors."""
    C = C.to(torch.float64).clone()
    C.diagonal().add_(damp * C.diagonal().mean())
    values, vectors = torch.linalg.eigh(C)
    order = torch.argsort(values, descending=True)
    return values[order], vectors[:, order]


def random_upper_left(dim: int, block: int, generator: torch.Generator) -> torch.Tensor:
    """An orthogonal (dim × dim) float64 matrix: a random orthogonal ``block × block`` upper-left, identity below.

    ``Q @ R`` rotates only inside the span of Q's first ``block`` columns — the kept subspace — so the sliced
    model computes the same function (the reference code's ``--final-orientation random``).
    """
    A = torch.rand(block, block, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(A)
    q = q * torch.sign(torch.diagonal(r))[None, :]
    R = torch.eye(dim, dtype=torch.float64)
    R[:block, :block] = q
    return R
