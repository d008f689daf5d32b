"""MKA's similarity analyses (paper Figs. 3 and 5) of one checkpoint: layer × layer matrices under the measures
of :mod:`layerpuzzle.engine.layer_similarity` (cosine, Euclidean, Mahalanobis) on calibration tokens.

Fig. 3 compares a model before and after merging (the dense model and an MKA checkpoint, the same tokens);
Fig. 5 shows the dense model under each measure beside MKA's NPIB. One job per checkpoint
(rule ``layer_similarity``); the matrices of the layer *outputs* ``h[1..L]`` are stored long
(``measure, i, j, value``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...atomic import atomic_file
from ...data.calibration import load_calibration
from ...engine.layer_similarity import model_similarity
from ...models.sources import load_model

log = logging.getLogger(__name__)


def similarity_frame(matrices: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """``{measure: (L, L)}`` -> long frame ``measure, i, j, value`` (row-major)."""
    rows = []
    for measure, M in matrices.items():
        n = M.shape[0]
        i, j = np.divmod(np.arange(n * n), n)
        rows.append(pd.DataFrame({"measure": measure, "i": i, "j": j, "value": M.reshape(-1).astype(float)}))
    return pd.concat(rows, ignore_index=True)


def matrix_from_frame(df: pd.DataFrame, measure: str) -> np.ndarray:
    """Inverse of :func:`similarity_frame` for one measure."""
    part = df[df["measure"] == measure]
    n = int(part["i"].max()) + 1
    M = np.full((n, n), np.nan)
    M[part["i"].to_numpy(), part["j"].to_numpy()] = part["value"].to_numpy()
    return M


def run_layer_similarity(ckpt_dir: str, calib_path: str, out_path: str | Path, *, measures: Sequence[str],
                         batch_size: int = 4, dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    """Matrices of ``measures`` over the layer outputs of the checkpoint at ``ckpt_dir`` on the calibration
    windows at ``calib_path``, written to ``out_path`` (parquet)."""
    model, _ = load_model(ckpt_dir, dtype=dtype, device=device)
    ids = load_calibration(calib_path)
    mats = model_similarity(model, ids, list(measures), batch_size=batch_size)
    df = similarity_frame(mats)
    with atomic_file(out_path) as tmp:
        df.to_parquet(tmp, index=False)
    layers = next(iter(mats.values())).shape[0]
    log.info("%s: %d layers, measures %s, %d calibration windows", ckpt_dir, layers, ", ".join(measures), len(ids))
    return {"layers": layers, "windows": int(len(ids)), "measures": list(measures)}
