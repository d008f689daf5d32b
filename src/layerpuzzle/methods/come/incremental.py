"""Re-scoring a progressively merged model, incrementally or in full (docs/methods/come.md).

Merging the window ``l*..l*+m'`` changes no residual stream ``h[k]`` with
``k <= l*``.  So after a merge only what depends on a deeper state is
recomputed:

* pairs ``(l, m)`` (``h[l]`` vs ``h[l+m+1]``) with ``l + m + 1 > l*``: the
  pass restarts at ``h[l*]`` with the ``max_span`` states before it as the
  prefix of windows straddling ``l*``;
* channel sensitivities of layers ``>= l*`` (those of earlier layers depend
  only on their own weights and inputs, both unchanged).

``recompute="full"`` re-scores the whole model every iteration, as the
released code does; both modes give bit-identical scores on CPU.

State cache (``recompute="incremental"``): ``h[k]`` is kept for every depth
``k`` that is a multiple of ``cache_every`` (on ``cache_device``: by default
the runner's device — on a GPU, copying every state to host memory costs more
than the layer forwards it saves: 5.7 of 8.4 s for LLaMA-2-7B,
bench_come_gpu_7b.py).  Memory ≈ (L/cache_every + 1) · W · S · D · bytes per element —
SmolLM2-135M with 6,144 calibration tokens in fp32: 14 MB per depth, 0.44 GB
for all 31 depths; LLaMA-2-7B with ~18k tokens in fp16: 0.15 GB per depth,
4.9 GB for all 33.  With ``cache_every > 1`` a missing state is recomputed
from the nearest kept one below it (at most ``cache_every - 1 + max_span``
extra layer forwards per iteration).
"""

from __future__ import annotations

from typing import Literal

import torch

from ...engine.channel_sensitivity import layer_sensitivity
from ...engine.layer_scores import score_layers
from ...engine.runner import Hidden, LayerwiseRunner
from ...models import architecture as arch
from .model_scores import AngularStats, ModelScores

Recompute = Literal["incremental", "full"]
RECOMPUTE = ("incremental", "full")


class IncrementalScorer:
    """Scores of the runner's (changing) model; call :meth:`after_merge` after every merge."""

    def __init__(self, runner: LayerwiseRunner, *, max_span: int, last_layer_output: str = "raw",
                 angular: bool = False, recompute: Recompute = "incremental", cache_every: int = 1,
                 cache_device: str | torch.device | None = None, progress: bool = False):
        if recompute not in RECOMPUTE:
            raise ValueError(f"unknown recompute mode {recompute!r}; allowed: {', '.join(RECOMPUTE)}")
        if cache_every < 1:
            raise ValueError(f"cache_every must be >= 1, got {cache_every}")
        self.runner = runner
        self.max_span = int(max_span)
        self.last_layer_output = last_layer_output
        self.angular = angular
        self.recompute = recompute
        self.cache_every = int(cache_every)
        self.cache_device = torch.device(cache_device) if cache_device is not None else runner.device
        self.progress = progress
        self.scores: ModelScores | None = None
        self._cache: dict[int, Hidden] = {}

    @property
    def incremental(self) -> bool:
        return self.recompute == "incremental"

    # ------------------------------------------------------------------ state cache
    def _store(self, depth: int, hidden: Hidden) -> None:
        if self.incremental and depth % self.cache_every == 0 and depth < arch.num_layers(self.runner.model):
            self._cache[depth] = [h.to(self.cache_device) for h in hidden]

    def _load(self, depth: int) -> Hidden:
        return [h.to(self.runner.device) for h in self._cache[depth]]

    def states(self, first: int, last: int) -> list[Hidden]:
        """``[h[first], ..., h[last]]`` of the current model (``last`` < L), from the cache where possible."""
        if not 0 <= first <= last < arch.num_layers(self.runner.model):
            raise ValueError(f"states {first}..{last} out of range")
        if not self.incremental:
            base, hidden = 0, self.runner.embed()
        else:
            base = max(k for k in self._cache if k <= first) if self._cache else 0
            hidden = self._load(base) if base in self._cache else self.runner.embed()
        out = []
        for depth in range(base, last + 1):
            if depth > base:
                hidden = self._load(depth) if depth in self._cache else self.runner.layer(depth - 1, hidden)
            if depth >= first:
                out.append(hidden)
        return out

    def hidden(self, depth: int) -> Hidden:
        """``h[depth]``: the input of layer ``depth`` of the current model."""
        return self.states(depth, depth)[0]

    # ------------------------------------------------------------------ scoring
    def score(self, start: int = 0) -> ModelScores:
        """Scores of the current model, recomputing only what depends on ``h[k]``, ``k > start``."""
        model = self.runner.model
        n_layers = arch.num_layers(model)
        if not self.incremental or self.scores is None:
            start, kept = 0, ModelScores(n_layers=n_layers)
        else:
            kept = self.scores
            if kept.n_layers != n_layers:
                raise RuntimeError("the model changed depth without after_merge()")
        span = min(self.max_span, n_layers - 1)
        if start == 0:
            hidden, prefix = None, None
        else:
            st = self.states(max(0, start - span), start)
            prefix, hidden = st[:-1], st[-1]

        recent: list[tuple[int, Hidden]] = [(start - len(prefix or []) + j, h) for j, h in enumerate(prefix or [])]

        def on_state(k: int, h: Hidden) -> None:
            self._store(k, h)
            if self.angular and k > start:
                for d, hp in recent:
                    m = k - d - 1
                    if 0 <= m <= span:
                        stats = kept.angular.setdefault((d, m), AngularStats())
                        for a, b in zip(hp, h):
                            stats.update(a, b)
            recent.append((k, h))
            del recent[: max(0, len(recent) - (span + 1))]

        res = score_layers(self.runner, max_span=span, last_layer_output=self.last_layer_output,
                           collect_activations=True, start=start, hidden=hidden, prefix=prefix,
                           on_state=on_state, progress=self.progress)
        kept.cosine.update(res.table.pairs)
        for l in range(start, n_layers):
            down, o = res.activations.mean_abs(l)
            kept.ffn[l], kept.kv[l] = layer_sensitivity(arch.layers(model)[l], down, o, model.config)
        self.scores = kept
        return kept

    def after_merge(self, start: int) -> None:
        """The model's layers from ``start`` on were replaced (a merge at ``start``)."""
        n_layers = arch.num_layers(self.runner.model)
        if not self.incremental or self.scores is None:
            self.scores, self._cache = None, {}
            return
        self.scores = self.scores.keep_before(start, n_layers)
        self._cache = {k: v for k, v in self._cache.items() if k <= start}
