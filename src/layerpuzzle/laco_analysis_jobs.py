"""LaCo's analyses as workflow steps (rules in rules/laco_analyses.smk; docs/analyses.md).

* :func:`distances_job` — LaCo Table 14 for one (dense, pruned) pair: KL and linear / RBF CKA of the final
  hidden states (:func:`layerpuzzle.engine.distribution_distance.distribution_distances`) on sampled
  Wikipedia sentences;
* :func:`fig4_job` — LaCo Fig. 4 from the dense safetensors (:mod:`layerpuzzle.engine.weight_distances`);
* :func:`fig5_job` — LaCo Fig. 5a (:func:`layerpuzzle.engine.layer_similarity.adjacent_cosine` over the
  raw ``h[0..L]``) and Fig. 5b (:func:`layerpuzzle.methods.laco.merge_similarity.merged_layer_cosine`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .atomic import atomic_file, write_json
from .engine.distribution_distance import distribution_distances
from .engine.hidden_states import collect_hidden_states
from .engine.layer_similarity import adjacent_cosine
from .engine.weight_distances import CheckpointWeights, adjacent_weight_distances
from .figures.laco import fig4_weight_distances, fig5a_adjacent_cosine, fig5b_merged_cosine
from .methods.laco.merge_similarity import groups_within, merged_layer_cosine
from .methods.laco.sentences import sample_sentences
from .models import architecture as arch
from .models.sources import load_model

FIG5B_LAYERS = (9, 18)  # layers 10-19, 1-based (LaCo Fig. 5b)


def sentence_ids(tokenizer, sentences: list[str]) -> list[torch.Tensor]:
    """Each sentence tokenized on its own (no padding), as LaCo runs its sentences."""
    return [torch.tensor(tokenizer(s)["input_ids"], dtype=torch.long) for s in sentences]


def _write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_file(path) as tmp:
        df.to_csv(tmp, index=False)


def distances_job(dense_dir: str, pruned_dir: str, out_json: str, *, n_sentences: int, mirror: str | None,
                  seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    dense, tok = load_model(dense_dir, dtype="float32", device=device)
    pruned, _ = load_model(pruned_dir, dtype="float32", device=device)
    sentences = sample_sentences("wikipedia", n_sentences, seed, mirror)
    rec = distribution_distances(dense, pruned, sentence_ids(tok, sentences))
    rec.update({"dense": dense_dir, "pruned": pruned_dir, "sentences": {"source": "wikipedia", "n": n_sentences,
                                                                          "seed": seed},
                "dense_layers": arch.num_layers(dense), "pruned_layers": arch.num_layers(pruned)})
    write_json(out_json, rec)
    return rec


def fig4_job(dense_dir: str, png: str, csv: str, title: str) -> dict[str, Any]:
    rows = adjacent_weight_distances(CheckpointWeights(dense_dir))
    _write_csv(pd.DataFrame(rows), csv)
    fig4_weight_distances(rows, png, title)
    return {"pairs": len(rows)}


def fig5_job(dense_dir: str, out: dict[str, str], title: str, *, n_sentences: int, mirror: str | None,
             seed: int = 0, group_size: int = 4, device: str = "cpu") -> dict[str, Any]:
    model, tok = load_model(dense_dir, dtype="float32", device=device)
    ids = sentence_ids(tok, sample_sentences("wikipedia", n_sentences, seed, mirror))
    states = collect_hidden_states(model, ids, last_layer_output="raw")
    cos = adjacent_cosine(states)
    _write_csv(pd.DataFrame({"layer": range(len(cos)), "cosine": cos}), out["fig5a_csv"])
    fig5a_adjacent_cosine(cos, out["fig5a_png"], f"{title}: cosine of adjacent layers' outputs (LaCo Fig. 5a), "
                                                 f"{n_sentences} Wikipedia sentences")
    n = arch.num_layers(model)
    first, last = FIG5B_LAYERS
    if last >= n:  # a shallower model: the same span of 10 layers ending 2 below the top... kept in range
        first, last = max(0, n - 10), n - 1
    rows = merged_layer_cosine(model, ids, groups_within(first, last, group_size), group_size)
    _write_csv(pd.DataFrame(rows), out["fig5b_csv"])
    fig5b_merged_cosine(rows, out["fig5b_png"], f"{title}: RDSC-merged layer vs the last layer it replaces "
                                                f"(LaCo Fig. 5b), groups of {group_size} in layers "
                                                f"{first + 1}-{last + 1}")
    return {"layers": n, "groups": len(rows)}
