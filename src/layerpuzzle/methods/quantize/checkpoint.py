"""Quantized / sparsified checkpoints: a compressed-tensors HF directory plus ``quantization.json``.

``model.save_pretrained(dir, save_compressed=True)`` (llm-compressor wraps ``save_pretrained`` during
``oneshot``) writes int4 weights packed (``pack-quantized``), int8 weights as ``int-quantized`` and a
``quantization_config`` in ``config.json``; a SparseGPT model is written as plain safetensors with zeros
and no ``quantization_config``. Both load with ``AutoModelForCausalLM.from_pretrained`` (the quantized ones
need the ``compressed-tensors`` package) and so with ``layerpuzzle.models.sources.load_model``.
The directory is written atomically like every checkpoint of the project.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...atomic import atomic_dir
from ...models.checkpoint import model_card

RECORD = "quantization.json"


def weights_bytes(directory: str | Path) -> int:
    """Bytes of the ``*.safetensors`` files in ``directory`` (the weights on disk)."""
    return sum(p.stat().st_size for p in Path(directory).glob("*.safetensors"))


def save_quantized(model, tokenizer, out_dir: str | Path, record: dict[str, Any], *, base_model: str,
                   notes: tuple[str, ...] = (), extra_json: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (compressed), tokenizer, model card and ``quantization.json`` atomically to ``out_dir``."""
    out_dir = Path(out_dir)
    scheme = record["scheme"]
    kind = record["params"]["kind"]
    what = "sparsified" if kind == "sparsegpt" else "quantized"
    card = model_card(
        title=f"{base_model} — {scheme}",
        method=scheme, model=base_model,
        summary=(f"`{base_model}` {what} with llm-compressor {record['versions'].get('llmcompressor')} "
                 f"(`{scheme}`), calibrated on {record['calibration']['windows']} windows of "
                 f"{record['calibration']['seq_len']} tokens. The recipe is in `{RECORD}` (`recipe_yaml`)."),
        params=record["params"], layer_map=None,
        notes=(*notes,
               "Quantized checkpoints are in the compressed-tensors format: loading them needs the "
               "`compressed-tensors` package; on a CPU the weights are decompressed on load (fake quantization: "
               "the accuracy is that of the quantized model, memory and speed are not)."
               if kind != "sparsegpt" else
               "SparseGPT zeroes weights in place: a plain safetensors checkpoint with the same shapes."))
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, save_compressed=True)
        tokenizer.save_pretrained(tmp)
        full = {**record, "weights_bytes": weights_bytes(tmp)}
        (tmp / "README.md").write_text(card)
        (tmp / RECORD).write_text(json.dumps(full, indent=2, sort_keys=True, default=str) + "\n")
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return out_dir


def load_record(directory: str | Path) -> dict[str, Any]:
    return json.loads((Path(directory) / RECORD).read_text())
