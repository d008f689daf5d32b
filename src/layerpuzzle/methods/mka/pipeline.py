"""MKA as two workflow steps (rules ``mka_similarity`` and ``mka``)."""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ...atomic import atomic_file
from ...data.text_sources import resolve_mirror
from ...models.checkpoint import check_target, layers_to_remove, save_pruned
from ...models.sources import load_model
from .fusion import merge_last_layers
from .npib import npib_frame, npib_from_frame
from .prompts import mmlu_test_rows, select_prompts
from .similarity import SimilaritySettings, mka_similarity
from .. import registry
from ..switches import card_notes

log = logging.getLogger(__name__)


def _write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=False)


def run_similarity(model_dir: str, *, model_name: str, kernels: list[str], data: dict[str, Any],
                   manifold: dict[str, Any], npib: dict[str, Any], mirror: str | None, outputs: dict[str, list[str]],
                   dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    """NPIB matrices of the dense model → per kernel ``npib.parquet`` (long format) and ``embeddings.parquet``.

    ``outputs["npib"][i]`` / ``outputs["embeddings"][i]`` belong to ``kernels[i]``.
    """
    model, tok = load_model(model_dir, dtype=dtype, device=device)
    prompts = select_prompts(mmlu_test_rows(resolve_mirror(mirror)), data["num_tasks"], data["num_samples"],
                             data["seed"])
    settings = SimilaritySettings(sigma=manifold["sigma"], alpha=manifold["alpha"], dim=manifold["dim"],
                                  max_tokens=data["max_tokens"], n_neighbors=npib["n_neighbors"],
                                  k_entropy=npib["k_entropy"], seed=npib["seed"])
    results = mka_similarity(model, tok, [p.text for p in prompts], settings, kernels)
    info = {}
    for k, npib_path, emb_path in zip(kernels, outputs["npib"], outputs["embeddings"]):
        res = results[k]
        df = npib_frame(res.npib, model_name)
        df["kernel"] = k
        _write_parquet(df, npib_path)
        _write_parquet(res.embeddings_frame(model_name), emb_path)
        log.info("NPIB (%s kernel): %d prompts, %d tokens, %d NaN entries", k, res.info["n_prompts"],
                 res.info["tokens"], res.info["nan_entries"])
        info[k] = res.info
    return {"kernels": info, "subjects": sorted({p.subject for p in prompts})}


NOTES = {
    "described": "Fusion as described: the last two layers are merged repeatedly, W_i ← λ W_i + (1 − λ) W_j on the "
                 "7 projection weights, λ = sigmoid(s_i / (s_i + s_j)) from the NPIB row means; biases are layer "
                 "i's (not fused).",
    "released": "Fusion as released: the MKA code assigns the fused weights into a temporary state_dict copy, so "
                "nothing is fused; the checkpoint is the dense model with its last n layers deleted (CoMe's MKA "
                "rows for the LLaMA family come from this). The ratios it would have used are in mka.json.",
}


def run_mka(model_dir: str, npib_path: str, out_dir: str, *, model_name: str, target_fraction: float,
            variant: dict[str, Any], beta: float = 1.0, dtype: str = "auto", device: str = "auto") -> dict[str, Any]:
    check_target(model_dir, target_fraction)  # before loading: a target the model cannot take fails at once
    model, tok = load_model(model_dir, dtype=dtype, device=device)
    dense_config = copy.deepcopy(model.config)
    S = npib_from_frame(pd.read_parquet(npib_path))
    n_remove = layers_to_remove(dense_config, target_fraction)
    fusion, kernel = variant["fusion"], variant["kernel"]
    fuse_norms = bool(variant.get("fuse_norms", False))
    t0 = time.perf_counter()  # the merges only (the NPIB matrix is the mka_similarity job's)
    result = merge_last_layers(model, S, n_remove, fusion, beta=beta, fuse_norms=fuse_norms)
    seconds = time.perf_counter() - t0
    notes = [NOTES[fusion],
             f"NPIB from the {kernel} diffusion kernel"
             + (" (the released chunk bug: tokens of the first sample of each chunk)." if kernel == "released" else "."),
             "Renumbering self_attn.layer_idx is our addition (the MKA code does not)."]
    if fuse_norms and fusion == "described":
        notes.append("RMSNorm weights are merged with the same λ (fuse_norms).")
    save_pruned(
        model, tok, out_dir, dense_config=dense_config, base_model=model_name, method=registry.display_name("mka"),
        variant=variant.get("label") or "",
        params={k: v for k, v in variant.items() if k not in ("label", "targets")} | {"beta": beta},
        target_fraction=target_fraction, layer_groups=result.groups,
        summary="MKA merged the last two layers of the stack repeatedly (docs/methods/mka.md).",
        notes=[*notes, *card_notes("mka", variant)],
        extra_json={"mka.json": {"fusion": fusion, "kernel": kernel, "steps": result.steps}},
        pruning_seconds=seconds,
    )
    return {"removed": n_remove, "lambdas": [s["lambda_i"] for s in result.steps]}
