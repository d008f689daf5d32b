"""NPIB layer similarity (docs/methods/mka.md; MKA ``compute_similarity_matrix_npib_global``).

For the rank-normalised embeddings E_i (N × d) of layers i and j:

    MI_ij   = (1/d) Σ_dim mean( mutual_info_regression(E_i, E_j[:, dim], n_neighbors=5) )   (KSG)
    H_i     = −mean_s log( k / (N · r_k(s)^d) )        r_k = distance to the k-th neighbour, k = 50
    NPIB_ij = MI_ij / sqrt(H_i · H_j)                   (symmetric; i ≤ j computed, mirrored)

Rank-normalised data in [0, 1)^d usually has negative differential entropy for
every layer, so the product is positive; mixed signs give NaN, as in the code.
The KSG estimator adds a random jitter. The released code leaves ``random_state``
unset, so the jitter comes from NumPy's global RNG, which its ``set_seed(1)`` seeds
once before anything draws from it: the calls draw one after the other, in the
loop order i ≤ j, then target dimension. ``seed="released"`` reproduces that (one
``RandomState(1)`` shared by every call in that order); an integer seed (the default,
10) reseeds every call with ``random_state=seed`` instead.
Deviation: ``k`` is capped at N − 1 (the code fails for N ≤ 50).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.feature_selection import mutual_info_regression
from sklearn.neighbors import NearestNeighbors


def knn_entropy(x: np.ndarray, k: int = 50) -> float:
    """Kozachenko–Leonenko-style entropy as coded: −mean(log(k / (N · r_k^d)))."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(k / (n * dist[:, -1] ** d))))


def mutual_information(e_i: np.ndarray, e_j: np.ndarray, n_neighbors: int = 5,
                       seed: int | np.random.RandomState = 0) -> float:
    """Mean over the target dimensions of E_j of the mean KSG MI between E_i's features and that dimension."""
    return float(np.mean([
        np.mean(mutual_info_regression(e_i, e_j[:, dim], discrete_features=False, n_neighbors=n_neighbors,
                                       random_state=seed))
        for dim in range(e_j.shape[1])
    ]))


def npib_matrix(embeddings: Sequence[np.ndarray], n_neighbors: int = 5, k_entropy: int = 50,
                seed: int | str = 0) -> np.ndarray:
    """(L, L) symmetric NPIB similarity of the layers' embeddings (``seed``: an integer, or ``"released"``)."""
    if isinstance(seed, str) and seed != "released":
        raise ValueError(f"npib seed: value {seed!r} is not allowed; allowed: an integer or 'released'")
    jitter = np.random.RandomState(1) if seed == "released" else seed  # released: set_seed(1)'s global stream
    n = min(e.shape[0] for e in embeddings)
    if n <= n_neighbors:
        raise ValueError(f"NPIB needs more than n_neighbors={n_neighbors} samples, got {n}")
    k = min(k_entropy, n - 1)
    E = [np.asarray(e, dtype=np.float64)[:n] for e in embeddings]
    H = [knn_entropy(e, k) for e in E]
    L = len(E)
    S = np.zeros((L, L))
    with np.errstate(invalid="ignore"):
        for i in range(L):
            for j in range(i, L):
                S[i, j] = S[j, i] = mutual_information(E[i], E[j], n_neighbors, jitter) / np.sqrt(H[i] * H[j])
    return S


def npib_frame(S: np.ndarray, model: str = "") -> pd.DataFrame:
    """Long format: one row per (layer_i, layer_j) with the NPIB value."""
    L = S.shape[0]
    return pd.DataFrame({"model": model, "layer_i": np.repeat(np.arange(L), L), "layer_j": np.tile(np.arange(L), L),
                         "npib": S.reshape(-1)})


def npib_from_frame(df: pd.DataFrame) -> np.ndarray:
    L = int(df.layer_i.max()) + 1
    S = np.full((L, L), np.nan)
    S[df.layer_i.to_numpy(), df.layer_j.to_numpy()] = df.npib.to_numpy()
    return S
