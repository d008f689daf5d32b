"""Writing a sliced checkpoint: the unpruned untied ``config.json``, ``uneven_layers.json`` and the sliced
weights + shortcut matrices in ``model.safetensors`` (read back by ``layerpuzzle.models.uneven.load_uneven``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from ...atomic import atomic_dir
from ...models.uneven import RECORD_FILE

CARD = """# SliceGPT checkpoint

Sliced with SliceGPT (rotated residual stream, embedding dimension {embedding_dim} of {hidden_size}).
`config.json` holds the *unpruned* shapes; the sliced shapes are in `uneven_layers.json`, so
`AutoModelForCausalLM.from_pretrained` alone cannot load this directory. Load it with:

```python
from layerpuzzle.models.uneven import load_uneven
model = load_uneven("<this directory>")
```
"""


def save_sliced(model, out_dir: str | Path, record: dict[str, Any], *, tokenizer=None,
                extra_json: dict[str, Any] | None = None) -> Path:
    """Write the sliced ``model`` atomically to ``out_dir`` (config, record, safetensors, tokenizer, card)."""
    out_dir = Path(out_dir)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_dir(out_dir) as tmp:
        model.config.save_pretrained(tmp)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
        (tmp / "README.md").write_text(CARD.format(**record))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return out_dir
