"""Writing a sliced checkpoint through :func:`layerpuzzle.models.uneven.save_uneven`: the unpruned untied
``config.json``, ``uneven_layers.json`` (kind ``"sliced"``), the sliced weights + shortcut matrices in
safetensors, the tokenizer and a model card saying how to load it (read back by
``layerpuzzle.models.sources.load_model`` / ``layerpuzzle.models.uneven.load_uneven``).

``save_uneven`` first rebuilds the recorded shapes on the meta device with :func:`.rebuild.rebuild_sliced`
and refuses a record that does not give exactly the model's tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ...models.checkpoint import model_card
from ...models.uneven import save_uneven, uneven_card_section
from .. import registry

SUMMARY = ("Sliced with SliceGPT (Ashkboos et al., ICLR 2024): every residual RMSNorm folded into the next linear "
           "layers, the residual stream rotated into its principal components at every site and cut to embedding "
           "dimension {embedding_dim} of {hidden_size}; each layer's two residual connections carry a shortcut "
           "matrix (`attn_shortcut_Q`, `mlp_shortcut_Q`). `config.json` holds the *unpruned*, untied shapes.")


def sliced_card(record: dict[str, Any], *, base_model: str, title: str | None = None,
                params: dict[str, Any] | None = None, notes: Sequence[str] = ()) -> str:
    """The model card of a sliced checkpoint (its "Load" section says plain ``from_pretrained`` cannot load it)."""
    name = registry.display_name("slicegpt")
    return model_card(title=title or f"{base_model} — {name}, embedding dimension {record['embedding_dim']} of "
                                      f"{record['hidden_size']}",
                      method=name, model=base_model, summary=SUMMARY.format(**record), params=params or {},
                      layer_map=None, notes=notes, load_section=uneven_card_section(record["kind"]))


def save_sliced(model, tokenizer, out_dir: str | Path, record: dict[str, Any], *, base_model: str | None = None,
                title: str | None = None, params: dict[str, Any] | None = None, notes: Sequence[str] = (),
                extra_json: dict[str, Any] | None = None) -> Path:
    """Write the sliced ``model`` atomically to ``out_dir`` (config, record, safetensors, tokenizer, card)."""
    base = base_model or str(model.config.name_or_path or model.config.model_type)
    card = sliced_card(record, base_model=base, title=title, params=params, notes=notes)
    return save_uneven(model, tokenizer, out_dir, record=record, card=card, extra_json=extra_json)
