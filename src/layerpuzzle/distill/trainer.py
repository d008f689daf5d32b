"""A resumable optimisation loop: a job killed at any moment resumes, it does not restart.

A post-training run is a sequence of **phases** (CoMe-sp: one; CoMe-mp: one per
merged layer; FuseGPT: one per iteration), each with its own trainable
parameters, optimiser and LR schedule.  :func:`run_phase` trains one phase and
keeps its state in a :class:`ResumeStore` directory:

* every ``checkpoint_every`` steps it writes ``<phase>.state.pt`` — trainable
  parameters, optimiser and scheduler state, the Python / NumPy / torch RNG
  states, the next step, the data position, the loss and validation history and
  the best-validation state — to a temporary file and renames it into place
  (:func:`layerpuzzle.atomic.atomic_file`), so a checkpoint is whole or absent;
* when the phase ends it writes ``<phase>.done.pt`` (final parameters + history);
  a rerun loads it and skips the phase.

Given the same inputs, a run that is interrupted (exception, SIGKILL) and
rerun ends with the same weights, bit for bit on CPU, as an uninterrupted run:
the batch of step ``s`` is a pure function of ``s`` (:class:`~.data.BatchOrder`)
and everything else that evolves is in the checkpoint.

Where the store lives (workflow): ``results/{model}/train_state/{method}/{target}/{slug}/``,
a sibling of the checkpoint, **not** a declared output — Snakemake deletes the
declared outputs of a failed job, which would throw the resume state away.  The
job removes the store after the checkpoint is written.  A ``run.json``
fingerprint guards against resuming a different run: the run's settings and
inputs (given by the caller), the dtype and device of the trained model
(:func:`runtime_fingerprint`) and the code version (:func:`code_version`: the
package version and a sha256 of the package's Python sources, so a state
written by other code is never resumed).  On a mismatch the job log says which
entries differ (this run's value and the state's), the store is emptied and
training starts afresh from step 0.

Test hook: the environment variable ``LAYERPUZZLE_STOP_AFTER_STEPS=N`` stops the
process after its N-th optimiser step (counted over all phases of this process)
by raising :class:`TrainingInterrupted`; ``N:kill`` sends itself SIGKILL instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from ..atomic import atomic_file, write_json

log = logging.getLogger(__name__)

STOP_ENV = "LAYERPUZZLE_STOP_AFTER_STEPS"
FORMAT = 1


class TrainingInterrupted(RuntimeError):
    """Raised by the stop hook (tests); the resume state on disk is intact."""


# ---------------------------------------------------------------------------- schedules
def cosine_with_warmup(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0,
                       min_lr_ratio: float = 0.0) -> LambdaLR:
    """LR factor ``s/w`` for ``s < w``, then ``m + (1−m)·½(1 + cos(π·(s−w)/(T−w)))`` (HF convention)."""

    def factor(s: int) -> float:
        if s < warmup_steps:
            return s / max(1, warmup_steps)
        progress = (s - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return LambdaLR(optimizer, factor)


# ---------------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """Python, NumPy (legacy global) and torch CPU RNG states, as tensors and plain lists."""
    version, py_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(py_state), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


# ---------------------------------------------------------------------------- fingerprint
_CODE_VERSION: dict[str, str] | None = None


def code_version() -> dict[str, str]:
    """The package version and the sha256 of every ``layerpuzzle/**/*.py`` (path and bytes, sorted by path)."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        from .. import __version__

        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        for f in sorted(root.rglob("*.py")):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        _CODE_VERSION = {"package": __version__, "source_sha256": h.hexdigest()}
    return dict(_CODE_VERSION)


def runtime_fingerprint(model: nn.Module) -> dict[str, str]:
    """dtype and device of ``model``'s parameters, e.g. ``{"dtype": "torch.bfloat16", "device": "cuda:0"}``."""
    p = next(model.parameters())
    return {"dtype": str(p.dtype), "device": str(p.device)}


def _differences(have: Any, want: Any, prefix: str = "") -> list[str]:
    """``key: here X, in the state Y`` for every leaf where ``want`` (this run) and ``have`` (the state) differ."""
    if isinstance(have, dict) and isinstance(want, dict):
        out = []
        for k in sorted(set(have) | set(want), key=str):
            out += _differences(have.get(k, "<missing>"), want.get(k, "<missing>"), f"{prefix}{k}.")
        return out
    return [] if have == want else [f"{prefix.rstrip('.')}: here {want!r}, in the state {have!r}"]


# ---------------------------------------------------------------------------- store
def tensors_sha256(tensors: dict[str, Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of ``tensors`` (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class ResumeStore:
    """The resume state of one post-training run: a directory of ``<phase>.{state,done}.pt`` files.

    ``root=None`` keeps nothing (no resume), for callers that do not need it.
    The fingerprint written to ``run.json`` is ``fingerprint`` plus ``code`` (:func:`code_version`).
    """

    def __init__(self, root: str | os.PathLike | None, fingerprint: dict[str, Any] | None = None):
        self.root = Path(root) if root is not None else None
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        want = json.loads(json.dumps({**(fingerprint or {}), "code": code_version()}, sort_keys=True, default=str))
        run_file = self.root / "run.json"
        if run_file.exists():
            have = json.loads(run_file.read_text())
            if have != want:
                log.warning("resume state in %s was written by a different run, so it is discarded and training "
                            "starts from step 0; it differs in %s", self.root, "; ".join(_differences(have, want)))
                self.clear()
                self.root.mkdir(parents=True, exist_ok=True)
        if not run_file.exists():
            write_json(run_file, want)

    def _path(self, phase: str, kind: str) -> Path:
        assert self.root is not None
        return self.root / f"{phase}.{kind}.pt"

    def load(self, phase: str, kind: str = "state") -> dict[str, Any] | None:
        if self.root is None or not self._path(phase, kind).exists():
            return None
        return torch.load(self._path(phase, kind), map_location="cpu", weights_only=True)

    def save(self, phase: str, obj: dict[str, Any], kind: str = "state") -> None:
        if self.root is None:
            return
        with atomic_file(self._path(phase, kind)) as tmp:
            torch.save(obj, tmp)

    def finish(self, phase: str, obj: dict[str, Any]) -> None:
        """Write the phase's ``done`` file, then drop its step checkpoint."""
        self.save(phase, obj, kind="done")
        if self.root is not None:
            self._path(phase, "state").unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the whole store (after the run's checkpoint is safely written)."""
        if self.root is not None and self.root.exists():
            shutil.rmtree(self.root)


# ---------------------------------------------------------------------------- stop hook
class StopHook:
    """Stop the process after its ``after``-th step: raise, or SIGKILL itself (``kill=True``)."""

    def __init__(self, after: int | None = None, kill: bool = False):
        self.after, self.kill, self.steps = after, kill, 0

    @classmethod
    def from_env(cls) -> "StopHook":
        value = os.environ.get(STOP_ENV, "").strip()
        if not value:
            return cls()
        n, _, mode = value.partition(":")
        return cls(int(n), kill=(mode == "kill"))

    def tick(self) -> None:
        self.steps += 1
        if self.after is not None and self.steps >= self.after:
            if self.kill:
                log.warning("%s: SIGKILL after %d steps", STOP_ENV, self.steps)
                logging.shutdown()
                os.kill(os.getpid(), signal.SIGKILL)
            raise TrainingInterrupted(f"stopped after {self.steps} steps ({STOP_ENV})")


# ---------------------------------------------------------------------------- phase
@dataclass
class Validation:
    """Evaluate ``loss()`` (no grad) every ``every`` steps; keep the best state if ``keep_best``."""

    loss: Callable[[], float]
    every: int
    keep_best: bool = True


@dataclass
class Phase:
    """One optimisation run: trainable ``params`` (by name), optimiser, schedule, loss of step s."""

    name: str
    params: dict[str, nn.Parameter]
    optimizer: Optimizer
    scheduler: LRScheduler | None
    total_steps: int
    step_loss: Callable[[int], Tensor]
    position: Callable[[int], dict[str, int]] = lambda s: {"step": s}
    grad_clip: float | None = None
    validation: Validation | None = None


@dataclass
class PhaseResult:
    name: str
    losses: list[float]
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    resumed_from: int | None = None
    skipped: bool = False
    params_sha256: str = ""
    steps_run: int = 0          # optimiser steps executed by this process (total − resumed_from on a resume)


def _snapshot(params: dict[str, nn.Parameter]) -> dict[str, Tensor]:
    return {n: p.detach().cpu().clone() for n, p in params.items()}


@torch.no_grad()
def _load_params(params: dict[str, nn.Parameter], values: dict[str, Tensor]) -> None:
    missing = set(params) ^ set(values)
    if missing:
        raise KeyError(f"resume state does not match the trainable parameters: {sorted(missing)[:5]}")
    for n, p in params.items():
        p.copy_(values[n].to(p.device, p.dtype))


def run_phase(phase: Phase, store: ResumeStore, *, checkpoint_every: int, stop: StopHook | None = None,
              progress: bool = True) -> PhaseResult:
    """Train ``phase`` to ``total_steps``, resuming from ``store`` (see module docstring)."""
    from tqdm.auto import tqdm

    done = store.load(phase.name, "done")
    if done is not None:
        _load_params(phase.params, done["params"])
        log.info("phase %s: already done, loaded its final parameters", phase.name)
        return PhaseResult(phase.name, list(done["losses"]), [tuple(v) for v in done["val_losses"]],
                           done["best_step"], None, True, tensors_sha256(done["params"]))

    start, losses, val_losses = 0, [], []
    best: dict[str, Any] | None = None
    resumed_from = None
    state = store.load(phase.name)
    if state is not None:
        _load_params(phase.params, state["params"])
        phase.optimizer.load_state_dict(state["optimizer"])
        if phase.scheduler is not None:
            phase.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start, losses = int(state["step"]), list(state["losses"])
        val_losses, best = [tuple(v) for v in state["val_losses"]], state["best"]
        resumed_from = start
        log.info("phase %s: resumed at step %d/%d (data position %s)", phase.name, start, phase.total_steps,
                 state["data_position"])

    def checkpoint(next_step: int) -> dict[str, Any]:
        return {
            "format": FORMAT, "phase": phase.name, "step": next_step, "params": _snapshot(phase.params),
            "optimizer": phase.optimizer.state_dict(),
            "scheduler": phase.scheduler.state_dict() if phase.scheduler is not None else None,
            "rng": rng_state(), "data_position": phase.position(next_step),
            "losses": list(losses), "val_losses": [list(v) for v in val_losses], "best": best,
        }

    bar = tqdm(total=phase.total_steps, initial=start, desc=phase.name, disable=not progress, mininterval=2.0,
               dynamic_ncols=False, ascii=True)
    trainable = list(phase.params.values())
    for step in range(start, phase.total_steps):
        phase.optimizer.zero_grad(set_to_none=True)
        loss = phase.step_loss(step)
        loss.backward()
        if phase.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, phase.grad_clip)
        phase.optimizer.step()
        if phase.scheduler is not None:
            phase.scheduler.step()
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
        v = phase.validation
        if v is not None and ((step + 1) % v.every == 0 or step + 1 == phase.total_steps):
            with torch.no_grad():
                val = float(v.loss())
            val_losses.append((step + 1, val))
            if v.keep_best and (best is None or val < best["loss"]):
                best = {"loss": val, "step": step + 1, "params": _snapshot(phase.params)}
        if step + 1 < phase.total_steps and (step + 1) % checkpoint_every == 0:
            store.save(phase.name, checkpoint(step + 1))
        if stop is not None and step + 1 < phase.total_steps:
            stop.tick()
    bar.close()

    best_step = None
    if best is not None:
        _load_params(phase.params, best["params"])
        best_step = int(best["step"])
        log.info("phase %s: kept the best-validation state (step %d, loss %.6g)", phase.name, best_step, best["loss"])
    final = _snapshot(phase.params)
    store.finish(phase.name, {"params": final, "losses": losses, "val_losses": [list(v) for v in val_losses],
                              "best_step": best_step})
    if stop is not None and phase.total_steps > start:
        stop.tick()
    return PhaseResult(phase.name, losses, val_losses, best_step, resumed_from, False, tensors_sha256(final),
                       steps_run=phase.total_steps - start)
