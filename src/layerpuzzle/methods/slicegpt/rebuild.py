"""Rebuilding a sliced model from its shape record (``uneven_layers.json`` kind ``"sliced"``).

:func:`rebuild_sliced` reshapes a model freshly built by ``AutoModelForCausalLM.from_config`` (the unpruned,
untied config) in place: embedding width, every layer's q/k/v/gate/up input and o/down output widths, the
weightless norms, the two shortcut matrices per layer and the LM head input width, so that the saved state
dict then loads strictly.  The values are placeholders until that load.  Importing this module registers it
as the rebuilder of kind ``"sliced"`` (:mod:`layerpuzzle.models.uneven` imports it on first use).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...models.architecture import check_supported, decoder, layers
from ...models.uneven import register_rebuilder
from .layer import SlicedDecoderLayer
from .norms import ResidualRMSNorm
from .untie import untie_embeddings

LAYER_KEYS = ("attn_input", "mlp_input", "output")


def _resized(linear: nn.Linear, in_features: int | None = None, out_features: int | None = None) -> nn.Linear:
    w = linear.weight
    return nn.Linear(in_features or linear.in_features, out_features or linear.out_features,
                     bias=linear.bias is not None, dtype=w.dtype, device=w.device)


def _check_record(model, record: dict[str, Any]) -> None:
    if record.get("kind") != "sliced":
        raise ValueError(f"uneven_layers.json kind {record.get('kind')!r} is not 'sliced'")
    d = int(model.config.hidden_size)
    if int(record.get("hidden_size", -1)) != d:
        raise ValueError(f"uneven_layers.json hidden_size {record.get('hidden_size')!r} != config hidden_size {d}")
    entries = record.get("layers")
    if not isinstance(entries, list) or len(entries) != len(layers(model)):
        raise ValueError(f"uneven_layers.json 'layers' must list {len(layers(model))} layers, "
                         f"got {len(entries) if isinstance(entries, list) else entries!r}")
    widths = [record.get("embedding_dim"), record.get("lm_head_input")]
    widths += [e.get(k) for e in entries for k in LAYER_KEYS]
    if any(not isinstance(w, int) or not 1 <= w <= d for w in widths):
        raise ValueError(f"uneven_layers.json widths must be integers in 1..{d}; got {widths}")
    prev = record["embedding_dim"]
    for i, e in enumerate(entries):
        if e["attn_input"] != prev:
            raise ValueError(f"uneven_layers.json layer {i} attn_input {e['attn_input']} != the width arriving ({prev})")
        prev = e["output"]
    if record["lm_head_input"] != prev:
        raise ValueError(f"uneven_layers.json lm_head_input {record['lm_head_input']} != last layer output {prev}")


@torch.no_grad()
def rebuild_sliced(model, record: dict[str, Any]) -> None:
    """Reshape a fresh ``from_config`` model in place to the sliced shapes in ``record``."""
    check_supported(model)
    _check_record(model, record)
    untie_embeddings(model)
    d, eps = int(model.config.hidden_size), float(record["norm_eps"])
    dec = decoder(model)
    emb = model.get_input_embeddings()
    new_emb = nn.Embedding(emb.num_embeddings, record["embedding_dim"], padding_idx=emb.padding_idx,
                           dtype=emb.weight.dtype, device=emb.weight.device)
    model.set_input_embeddings(new_emb)
    blocks = layers(model)
    for i, e in enumerate(record["layers"]):
        old = blocks[i]
        attn, mlp = old.self_attn, old.mlp
        k_in, k_mid, k_out = e["attn_input"], e["mlp_input"], e["output"]
        attn.q_proj, attn.k_proj, attn.v_proj = (_resized(lin, in_features=k_in)
                                                 for lin in (attn.q_proj, attn.k_proj, attn.v_proj))
        attn.o_proj = _resized(attn.o_proj, out_features=k_mid)
        mlp.gate_proj, mlp.up_proj = (_resized(lin, in_features=k_mid) for lin in (mlp.gate_proj, mlp.up_proj))
        mlp.down_proj = _resized(mlp.down_proj, out_features=k_out)
        dtype, device = attn.q_proj.weight.dtype, attn.q_proj.weight.device
        blocks[i] = SlicedDecoderLayer(attn, mlp, ResidualRMSNorm(d, eps), ResidualRMSNorm(d, eps),
                                       torch.zeros(k_in, k_mid, dtype=dtype, device=device),
                                       torch.zeros(k_mid, k_out, dtype=dtype, device=device))
    dec.norm = ResidualRMSNorm(d, eps)
    model.set_output_embeddings(_resized(model.get_output_embeddings(), in_features=record["lm_head_input"]))


register_rebuilder("sliced", rebuild_sliced)  # found by kind via layerpuzzle.models.uneven.REBUILDER_MODULES
