"""``results/tables/figures.md``: the figures, linked by paths relative to the index file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def figures_markdown(entries: Sequence[tuple[str, str, str | Path]], index_path: str | Path) -> str:
    """Markdown listing ``(model, caption, png path)`` entries, grouped by model, with relative image links."""
    base = Path(index_path).parent
    lines = ["# Figures", "", "Layer-similarity heat maps (BI/SBI from the scores stage, NPIB from MKA).", ""]
    model = None
    for m, caption, png in entries:
        if m != model:
            lines += [f"## {m}", ""]
            model = m
        rel = os.path.relpath(Path(png), base).replace(os.sep, "/")
        lines += [f"**{caption}**", "", f"![{caption}]({rel})", ""]
    return "\n".join(lines)
