"""CoMe's progressive loop (paper Alg. 1; docs/methods/come.md).

    groups = [[0], ..., [L0-1]]
    while L_cur > L_target:
        m' = min(m, L_cur - L_target)               # window of m'+1 layers (m+1 = layers_per_merge)
        score the current model: BI per layer, SBI per window of m'+1 layers, S^(l) per layer
        remerge = forbidden (released --wo-repeat): SBI = +inf for windows touching a merged layer
        l* = argmin SBI (first on ties)
        r  = ratios of the window (CoMe: Eq. 3 with ρ; CoMe-P: NLL search, come_p.py)
        merge layers l*..l*+m' by concatenation (Eq. 5); groups[l*..l*+m'] -> one group

The loop is shared by CoMe and CoMe-P: only the *ratio rule* differs.  A ratio
rule gets a :class:`WindowContext` and returns the ratios plus any per-candidate
records.  Scores are recomputed every iteration, incrementally from ``l*`` on
by default (:mod:`.incremental`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ...engine.runner import LayerwiseRunner
from ...models import architecture as arch
from .concat_merge import merge_window
from .incremental import RECOMPUTE, IncrementalScorer, Recompute
from .layer_groups import (
    Groups,
    check_partition,
    initial_groups,
    merge_groups,
    n_leaves,
    touches_merged,
)
from ..switches import method_switches
from .model_scores import ModelScores
from .retention import distribute_and_round, retention_ratios, rho_threshold

log = logging.getLogger(__name__)

Remerge = Literal["allowed", "forbidden"]


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class LoopSettings:
    """Switches shared by CoMe and CoMe-P; every default is the paper's reading (docs/methods/come.md)."""

    layers_per_merge: int = 2  # m + 1 (App. B.1: two layers per iteration)
    sbi_estimator: str = "cosine_mean"  # cosine_mean | released | angular_all
    bi_estimator: str = "cosine_mean"  # cosine_mean | released
    remerge: str = "allowed"  # allowed | forbidden (released --wo-repeat)
    last_layer_output: str = "raw"  # raw | final_norm
    query_mapping: str = "grouped"  # grouped | tiled (released GQA bug)
    qk_norm: str = "mean"  # mean | ratio_weighted (released Qwen3)

    def check(self) -> None:
        for name, switch in method_switches("come").items():  # the declared switches (methods/come/switches.py)
            if hasattr(self, name):
                switch.check(getattr(self, name), name)
        if int(self.layers_per_merge) < 2:
            raise ValueError(f"layers_per_merge must be >= 2, got {self.layers_per_merge}")

    @property
    def max_span(self) -> int:
        return int(self.layers_per_merge) - 1


@dataclass(frozen=True)
class ComeSettings(LoopSettings):
    """CoMe: ratios from Eq. 3 with skewness ``p`` and minimum retention ratio ``rho``."""

    p: float = 1.0
    rho: float = 0.0
    rho_rule: str = "paper"  # paper: ρ | released: ρ^(1/(n_leaves-1))
    sbi_span: str = "merged"  # merged: score the window merged | released: a fixed 2-layer span (see released_sbi)

    def check(self) -> None:
        super().check()
        if self.rho_rule not in ("paper", "released"):
            raise ValueError(f"rho_rule={self.rho_rule!r} is not allowed; allowed: paper, released")
        if self.sbi_span not in ("merged", "released"):
            raise ValueError(f"sbi_span={self.sbi_span!r} is not allowed; allowed: merged, released")


@dataclass(frozen=True)
class Execution:
    """How the loop runs; none of these changes a merge decision (recompute modes agree bit-for-bit on CPU)."""

    recompute: Recompute = "incremental"
    cache_every: int = 1
    batch_size: int = 2
    device: str | None = None
    progress: bool = False  # one tqdm bar over the layers removed (to the rule's log in a job)

    def check(self) -> None:
        if self.recompute not in RECOMPUTE:
            raise ValueError(f"recompute={self.recompute!r} is not allowed; allowed: {', '.join(RECOMPUTE)}")


# ---------------------------------------------------------------------------- records
@dataclass
class WindowContext:
    """What a ratio rule sees: the chosen window of the current model and its scores."""

    model: Any
    runner: LayerwiseRunner
    scorer: IncrementalScorer
    scores: ModelScores
    groups: Groups
    start: int
    stop: int
    bi: np.ndarray  # BI of the current layers
    n_leaves: int


@dataclass
class RatioChoice:
    ratios: list[float]
    threshold: float | None = None  # ρ actually applied (CoMe)
    candidates: list[dict[str, Any]] = field(default_factory=list)  # CoMe-P: one row per r


@dataclass
class Iteration:
    """One merge: scores of the model it was chosen on, the decision, and its cost."""

    iteration: int
    n_layers: int  # before the merge
    span: int  # m' (the window has m'+1 layers)
    window_start: int
    window_stop: int
    sbi_chosen: float
    bi: list[float]
    sbi: list[float]  # per window start, +inf where remerge=forbidden blocks it
    ratios: list[float]
    rho_threshold: float | None
    kv_units: list[int]
    ffn_units: list[int]
    n_leaves: int
    groups: list[list[int]]  # after the merge
    rescored_from: int
    layer_forwards: int  # during this iteration (scoring + candidates)
    seconds: float
    sensitivity: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    candidates: list[dict[str, Any]] = field(repr=False, default_factory=list)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("sensitivity")
        d.pop("candidates")
        return d


@dataclass
class MergeResult:
    model: Any
    groups: Groups
    iterations: list[Iteration]
    layer_forwards: int
    n_windows: int
    seq_len: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "layer_forwards": self.layer_forwards,
            "layer_forwards_per_iteration": [it.layer_forwards for it in self.iterations],
            "iterations": len(self.iterations),
            "calibration_windows": self.n_windows,
            "calibration_seq_len": self.seq_len,
            "seconds": round(self.seconds, 3),
            "layer_groups": self.groups,
        }


RatioRule = Callable[[WindowContext], RatioChoice]


# ---------------------------------------------------------------------------- pieces
def blocked_sbi(sbi: Sequence[float], groups: Sequence[Sequence[int]], span: int, remerge: str) -> np.ndarray:
    """SBI with ``+inf`` for windows that ``remerge="forbidden"`` excludes (those touching a merged layer).

    NaN scores (a zero residual stream) are read as ``+inf``: never chosen.
    """
    out = np.asarray(sbi, dtype=np.float64).copy()
    out[np.isnan(out)] = math.inf
    if remerge == "forbidden":
        for l in range(out.size):
            if touches_merged(groups, l, l + span):
                out[l] = math.inf
    elif remerge != "allowed":
        raise ValueError(f"remerge={remerge!r} is not allowed; allowed: allowed, forbidden")
    return out


def released_sbi(scores: ModelScores, groups: Sequence[Sequence[int]], layers_per_merge: int, estimator: str,
                 remerge: str) -> np.ndarray:
    """The window scores of the released CoMe loop, whatever window it then merges (``sbi_span: released``).

    The released code scores every start ``l`` by the fixed 2-layer pair ``h[l]`` vs ``h[l+2]``
    (``compute_bi(..., n_prune_layers=2)``), keeps the first ``L − m + 1`` of them (``m`` = ``--merge-item``,
    also in the last iteration when fewer layers are merged), and with ``--wo-repeat`` sets ``+inf`` at the
    starts ``i − (m − 1) .. i + m − 2`` of every merged layer ``i`` (for ``m = 2``: the windows touching it).
    """
    n_starts = len(groups) - layers_per_merge + 1
    if n_starts < 1:
        return np.zeros(1)  # the released code takes index 0 when it scores nothing
    out = np.asarray(scores.sbi(1, estimator), dtype=np.float64)[:n_starts].copy()
    out[np.isnan(out)] = math.inf
    if remerge == "forbidden":
        m = layers_per_merge
        for i, g in enumerate(groups):
            if len(g) > 1:
                for s in range(max(0, i - (m - 1)), min(n_starts, i + m - 1)):
                    out[s] = math.inf
    return out


def choose_window(sbi: Sequence[float]) -> int:
    """l* = argmin SBI, the first on ties; every window blocked is an error."""
    s = np.asarray(sbi, dtype=np.float64)
    if s.size == 0 or not np.isfinite(s).any():
        raise ValueError("no mergeable window left (all SBI are +inf: remerge=forbidden has blocked every window)")
    return int(np.argmin(s))


def come_ratio_rule(settings: ComeSettings) -> RatioRule:
    """Eq. 3: r = retention_ratios(BI[window], p, ρ_threshold(ρ, n_leaves, rule)).

    A negative BI (cosine rounding above 1) is read as 0.
    """

    def rule(ctx: WindowContext) -> RatioChoice:
        bi = np.clip(ctx.bi[ctx.start:ctx.stop + 1], 0.0, None)
        threshold = rho_threshold(settings.rho, ctx.n_leaves, settings.rho_rule)
        return RatioChoice(ratios=[float(x) for x in retention_ratios(bi, settings.p, threshold)], threshold=threshold)

    return rule


# ---------------------------------------------------------------------------- the loop
def progressive_merge(model, input_ids: torch.Tensor, n_remove: int, settings: LoopSettings, ratio_rule: RatioRule,
                      execution: Execution | None = None) -> MergeResult:
    """Merge ``model`` in place until ``n_remove`` layers are gone; return the record of every iteration."""
    execution = execution or Execution()
    settings.check()
    execution.check()
    L0 = arch.num_layers(model)
    if not 0 <= n_remove < L0:
        raise ValueError(f"cannot remove {n_remove} of {L0} layers")
    device = execution.device or next(model.parameters()).device
    runner = LayerwiseRunner(model, input_ids, batch_size=execution.batch_size, device=device)
    scorer = IncrementalScorer(runner, max_span=settings.max_span, last_layer_output=settings.last_layer_output,
                               angular=settings.sbi_estimator == "angular_all", recompute=execution.recompute,
                               cache_every=execution.cache_every, progress=False)
    groups = initial_groups(L0)
    target = L0 - n_remove
    iterations: list[Iteration] = []
    start_all = time.perf_counter()
    rescore_from = 0
    bar = tqdm(total=n_remove, desc="layers removed", unit="layer", disable=not execution.progress)
    while arch.num_layers(model) > target:
        t0, f0 = time.perf_counter(), runner.layer_forwards
        L = arch.num_layers(model)
        span = min(settings.max_span, L - target)
        scores = scorer.score(rescore_from)
        bi = scores.bi(settings.bi_estimator)
        if getattr(settings, "sbi_span", "merged") == "released":
            sbi = released_sbi(scores, groups, settings.layers_per_merge, settings.sbi_estimator, settings.remerge)
        else:
            sbi = blocked_sbi(scores.sbi(span, settings.sbi_estimator), groups, span, settings.remerge)
        start = choose_window(sbi)
        stop = start + span
        ctx = WindowContext(model=model, runner=runner, scorer=scorer, scores=scores, groups=groups, start=start,
                            stop=stop, bi=bi, n_leaves=n_leaves(groups, start, stop))
        choice = ratio_rule(ctx)
        g = arch.head_geometry(model.config)
        ffn = [scores.ffn[l] for l in range(start, stop + 1)]
        kv = [scores.kv[l] for l in range(start, stop + 1)]
        sensitivity = scores.sensitivity_tensors()
        merge_window(model, start, stop, choice.ratios, ffn, kv, query_mapping=settings.query_mapping,
                     qk_norm=settings.qk_norm)
        groups = merge_groups(groups, start, stop)
        scorer.after_merge(start)
        it = Iteration(
            iteration=len(iterations), n_layers=L, span=span, window_start=start, window_stop=stop,
            sbi_chosen=float(sbi[start]), bi=[float(x) for x in bi], sbi=[float(x) for x in sbi],
            ratios=list(choice.ratios), rho_threshold=choice.threshold,
            kv_units=distribute_and_round(g["n_kv"], choice.ratios),
            ffn_units=distribute_and_round(model.config.intermediate_size, choice.ratios),
            n_leaves=ctx.n_leaves, groups=[list(x) for x in groups], rescored_from=scores_start(scorer, rescore_from),
            layer_forwards=runner.layer_forwards - f0, seconds=time.perf_counter() - t0,
            sensitivity=sensitivity, candidates=choice.candidates,
        )
        iterations.append(it)
        log.info("iteration %d: %d layers, merge %d..%d (SBI %.5f, ratios %s, %d leaves), %d layer forwards, %.1f s",
                 it.iteration, L, start, stop, it.sbi_chosen, [round(r, 4) for r in it.ratios], it.n_leaves,
                 it.layer_forwards, it.seconds)
        rescore_from = start
        bar.update(L - arch.num_layers(model))
    bar.close()
    check_partition(groups, L0)
    return MergeResult(model=model, groups=groups, iterations=iterations, layer_forwards=runner.layer_forwards,
                       n_windows=int(input_ids.shape[0]), seq_len=int(input_ids.shape[1]),
                       seconds=time.perf_counter() - start_all)


def scores_start(scorer: IncrementalScorer, requested: int) -> int:
    """The depth the last scoring pass actually started from (0 in full mode)."""
    return requested if scorer.incremental else 0


def come(model, input_ids: torch.Tensor, n_remove: int, settings: ComeSettings | None = None,
         execution: Execution | None = None) -> MergeResult:
    """CoMe (Alg. 1): progressive concatenation merging with Eq. 3 ratios."""
    settings = settings or ComeSettings()
    return progressive_merge(model, input_ids, n_remove, settings, come_ratio_rule(settings), execution)
