"""ShortGPT: one-shot removal of the layers with the lowest Block Influence (docs/methods/shortgpt.md).

    BI_l = 1 - E_{x,t} cos(h[l]_t, h[l+1]_t)                       (ShortGPT Eq. 1; bi_estimator "cosine_mean")
    BI_l = Σ_{x,t} (1 - clamp(cos(h[l]_t, h[l+1]_t), 0, 1)) / L      (bi_estimator "released")

computed by the engine's streaming pass (:func:`layerpuzzle.engine.layer_scores.score_layers`).
``cosine_mean`` is the paper's definition.  ``released`` is the CoMe code's
``methods/shortgpt.py:block_influence``: each token's cosine clamped to
[0, 1] (a NaN cosine, i.e. a zero-norm state, read as 0.5) before ``1 - cos``,
summed over every token and divided by the number of layers; it is the same
engine estimator as CoMe's ``bi_estimator: released``.  The clamp matters
only for tokens whose layer output points against its input (unclamped BI > 1).
``last_layer_output="final_norm"`` takes the last layer's output after the
final RMSNorm, as HF ``output_hidden_states`` (the reproduction code's
``hf-models`` branch and the CoMe code) does; ``raw`` is the paper's
definition.  No layer is protected.

CoMe (App. B.1) used the ShortGPT paper's published order for LLaMA-2-7B (9
layers) and LLaMA-2-13B (10 layers) and appended its own lowest-BI layers:
:func:`shortgpt_order` takes such a ``published`` prefix.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from ...engine.block_influence import ESTIMATORS
from ...engine.layer_scores import score_layers
from ...engine.runner import LayerwiseRunner
from .removal import RemovalOrder, ascending_order
from .. import registry

DISPLAY_NAME = registry.display_name("shortgpt")


def block_influence(runner: LayerwiseRunner, last_layer_output: str = "raw",
                    estimator: str = "cosine_mean") -> list[float]:
    """BI of every layer over the runner's calibration windows under engine ``estimator``."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"bi_estimator={estimator!r}; allowed: {', '.join(ESTIMATORS)}")
    scores = score_layers(runner, max_span=0, last_layer_output=last_layer_output,
                          collect_activations=False, progress=False)
    return bi_from_rows(pd.DataFrame(scores.table.rows()), estimator)


def bi_from_rows(df: pd.DataFrame, estimator: str = "cosine_mean") -> list[float]:
    """BI per layer from the rows of a ``bi.parquet`` (layer_scores artifact) under ``estimator``."""
    sel = df[(df.span == 0) & (df.estimator == estimator)].sort_values("layer")
    if list(sel.layer) != list(range(len(sel))):
        raise ValueError(f"BI rows do not cover layers 0..L-1 under estimator {estimator!r}")
    return [float(v) for v in sel.value]


def shortgpt_order(bi: Sequence[float], published: Sequence[int] | None = None,
                   info: dict | None = None) -> RemovalOrder:
    """Ascending BI; with ``published``, that prefix first and the computed order after it."""
    bi = [float(b) for b in bi]
    computed = ascending_order(bi)
    head = [int(i) for i in (published or [])]
    if len(set(head)) != len(head) or any(not 0 <= i < len(bi) for i in head):
        raise ValueError(f"published order {head} must hold distinct layers of 0..{len(bi) - 1}")
    order = head + [i for i in computed if i not in set(head)]
    source = ["published"] * len(head) + ["computed"] * (len(order) - len(head))
    return RemovalOrder(method=DISPLAY_NAME, n_layers=len(bi), layers=order, scores=[bi[i] for i in order],
                        source=source, info={**(info or {}), "published_prefix": head})
