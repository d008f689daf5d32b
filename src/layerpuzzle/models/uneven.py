"""Checkpoints whose layers have uneven widths (width pruning, slicing).

One ``config.json`` cannot describe layers of different widths, so such a checkpoint is a
normal HF directory holding

* the **unpruned** ``config.json`` and the tokenizer;
* the pruned weights in safetensors;
* ``uneven_layers.json`` = ``{"format": "layerpuzzle-uneven/1", "kind": <str>,
  "layers": [<one record per layer>], ...}``.

Loading (:func:`load_uneven`, and transparently :func:`layerpuzzle.models.sources.load_model`)
builds the model from the config with ``AutoModelForCausalLM.from_config`` (no remote code),
calls the **rebuilder** of ``kind`` to reshape it in place, then loads the safetensors
strictly: a missing or unexpected tensor, or a wrong shape, is an error.

Rebuilders: ``register_rebuilder(kind, fn)`` with ``fn(model, record) -> None``.  The module
that defines a kind's rebuilder is imported on first use from :data:`REBUILDER_MODULES`
(kind -> module path, resolved with ``importlib``), so this low-level module never imports a
method package, and a loader process registers only what it loads.  A rebuilder must also
work on a model built on the ``meta`` device (:func:`save_uneven` checks shapes that way).
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import model_card, save_checkpoint

log = logging.getLogger(__name__)

FORMAT = "layerpuzzle-uneven/1"
RECORD_FILE = "uneven_layers.json"
Rebuilder = Callable[[Any, dict], None]

# kind -> module whose import registers its rebuilder (a method package may own its kind)
REBUILDER_MODULES: dict[str, str] = {
    "width_pruned": "layerpuzzle.models.width",
    "sliced": "layerpuzzle.methods.slicegpt.rebuild",
}
_REBUILDERS: dict[str, Rebuilder] = {}

LOAD_SNIPPET = """`AutoModelForCausalLM.from_pretrained` alone **cannot** load this checkpoint: `config.json`
describes the unpruned model, and `{record}` (kind `{kind}`) records each layer's actual widths.
Load it with layerpuzzle (it builds the model from the config, reshapes the layers, then loads the
weights strictly):

```python
from layerpuzzle.models.sources import load_model
model, tokenizer = load_model("{path}")  # or layerpuzzle.models.uneven.load_uneven
```"""


def register_rebuilder(kind: str, fn: Rebuilder) -> None:
    """Register ``fn(model, record)``, which reshapes a model built from the unpruned config, for ``kind``."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"rebuilder kind must be a non-empty string, got {kind!r}")
    _REBUILDERS[kind] = fn


def rebuilder(kind: str) -> Rebuilder:
    """The rebuilder of ``kind``, importing its module from :data:`REBUILDER_MODULES` on first use."""
    if kind not in _REBUILDERS and kind in REBUILDER_MODULES:
        try:
            importlib.import_module(REBUILDER_MODULES[kind])
        except ModuleNotFoundError as exc:
            raise ValueError(f"uneven checkpoint kind {kind!r}: its rebuilder module "
                             f"{REBUILDER_MODULES[kind]!r} is not available ({exc})") from exc
    if kind not in _REBUILDERS:
        known = sorted(set(_REBUILDERS) | set(REBUILDER_MODULES))
        raise ValueError(f"uneven checkpoint kind {kind!r} has no rebuilder; allowed: {', '.join(known)}")
    return _REBUILDERS[kind]


def is_uneven(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint directory with an ``uneven_layers.json``."""
    return (Path(path) / RECORD_FILE).is_file()


def read_record(path: str | Path) -> dict[str, Any]:
    record = json.loads((Path(path) / RECORD_FILE).read_text())
    if record.get("format") != FORMAT:
        raise ValueError(f"{Path(path) / RECORD_FILE}: format {record.get('format')!r} is not allowed; "
                         f"allowed: {FORMAT}")
    check_record(record)
    return record


def check_record(record: dict[str, Any]) -> None:
    if not isinstance(record.get("kind"), str) or not isinstance(record.get("layers"), list):
        raise ValueError("uneven record needs `kind` (a string) and `layers` (one entry per layer), got keys "
                         f"{sorted(record)}")


# ---------------------------------------------------------------------------- building and strict loading
def _from_config(config, dtype: torch.dtype, meta: bool = False):
    from transformers import AutoModelForCausalLM

    config = type(config).from_dict(config.to_dict())  # a copy: the rebuilder may not touch the caller's
    config._attn_implementation = "sdpa"
    if meta:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config, dtype=dtype)
    try:  # weights are overwritten by the checkpoint's: skip the random initialisation
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - older transformers
        from contextlib import nullcontext as no_init_weights
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.tie_weights()  # skipped with the initialisation; ties lm_head to the embeddings where the config says so
    return model


def build_uneven(config, record: dict[str, Any], dtype: torch.dtype = torch.float32, meta: bool = False):
    """A model of the recorded shapes: built from the unpruned ``config``, reshaped by the kind's rebuilder."""
    check_record(record)
    model = _from_config(config, dtype, meta=meta)
    rebuilder(record["kind"])(model, record)
    return model


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint's safetensors files (sharded or not)."""
    from safetensors.torch import load_file

    path = Path(path)
    index = path / "model.safetensors.index.json"
    files = (sorted({path / f for f in json.loads(index.read_text())["weight_map"].values()}) if index.is_file()
             else sorted(path.glob("*.safetensors")))
    if not files:
        raise FileNotFoundError(f"{path} has no *.safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f), device="cpu"))
    return state


def load_state_strict(model, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` into ``model``; every tensor the model has must be there (a tied alias counts), nothing else.

    Raises ``ValueError`` naming the missing / unexpected keys and the shape mismatches.
    """
    expected = model.state_dict()
    aliases: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(p), []).append(name)
    alias_of = {n: names for names in aliases.values() for n in names}
    missing = [k for k in expected if k not in state and not any(a in state for a in alias_of.get(k, ()))]
    unexpected = sorted(k for k in state if k not in expected)
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
             for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"strict load failed: missing {missing}, unexpected {unexpected}, shape mismatch {wrong}")
    model.load_state_dict(state, strict=False)


def load_uneven(path: str | Path, dtype: str = "float32", device: str = "cpu"):
    """``(model, tokenizer)`` of an uneven checkpoint: config -> rebuilder -> strict safetensors load; eval mode.

    ``dtype`` and ``device`` as in :func:`layerpuzzle.models.sources.load_model` (``auto``,
    ``checkpoint``, ``float32`` ...). No remote code is ever run.
    """
    from transformers import AutoConfig, AutoTokenizer

    from .sources import resolve_device, torch_dtype

    path = Path(path)
    record = read_record(path)
    device = resolve_device(device)
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    model = build_uneven(config, record, torch_dtype(dtype, device, path))
    load_state_strict(model, read_safetensors(path))
    model.to(device)
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    log.info("loaded uneven checkpoint %s (kind %s)", path, record["kind"])
    return model, tok


# ---------------------------------------------------------------------------- saving
def uneven_card_section(kind: str, path: str = "<this directory>") -> str:
    """The model card's "Load" text for an uneven checkpoint."""
    return LOAD_SNIPPET.format(record=RECORD_FILE, kind=kind, path=path)


def check_shapes(model, record: dict[str, Any]) -> None:
    """The rebuilder, applied on the meta device to the model's config, gives exactly ``model``'s tensor shapes."""
    rebuilt = build_uneven(model.config, record, meta=True).state_dict()
    have = model.state_dict()
    diff = sorted(k for k in set(rebuilt) | set(have)
                  if k not in rebuilt or k not in have or rebuilt[k].shape != have[k].shape)
    if diff:
        raise ValueError(f"uneven record of kind {record['kind']!r} does not rebuild the model's shapes; "
                         f"differing tensors: {diff[:10]}{' …' if len(diff) > 10 else ''}")


def save_uneven(model, tokenizer, out_dir: str | Path, *, record: dict[str, Any], card: str | None = None,
                title: str | None = None, summary: str = "", params: dict[str, Any] | None = None,
                layer_map: list[dict[str, Any]] | None = None, extra_json: dict[str, Any] | None = None,
                verify: bool = True, write_extra=None) -> Path:
    """Write an uneven checkpoint atomically (:func:`layerpuzzle.models.checkpoint.save_checkpoint`).

    ``record`` = ``{"kind": ..., "layers": [...], ...}`` (``format`` is added); ``model.config``
    must be the unpruned config.  ``card`` = the full model card, else one is made from
    ``title``/``summary``/``params``; either way it says how to load the checkpoint.  ``verify``
    rebuilds the shapes on the meta device and compares them with the model's first.
    """
    check_record(record)
    rebuilder(record["kind"])  # the kind must be loadable
    if verify:
        check_shapes(model, record)
    load_text = uneven_card_section(record["kind"])
    if card is None:
        card = model_card(title=title or f"{model.config.model_type} — {record['kind']} (uneven layer widths)",
                          method=record.get("method", record["kind"]), model=str(model.config.name_or_path or "?"),
                          summary=summary, params=params or {}, layer_map=layer_map, load_section=load_text)
    elif RECORD_FILE not in card:
        card = card.rstrip("\n") + "\n\n## Load (uneven layer widths)\n\n" + load_text + "\n"
    full = {"format": FORMAT, **{k: v for k, v in record.items() if k != "format"}}
    return save_checkpoint(model, tokenizer, out_dir, card=card, layer_map=layer_map,
                           extra_json={**(extra_json or {}), RECORD_FILE: full}, write_extra=write_extra)
