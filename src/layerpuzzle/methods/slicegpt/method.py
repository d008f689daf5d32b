"""SliceGPT end to end on a loaded model: settings → width d' → rotate and slice → checked parameter count.

``pruning_seconds`` is the wall time of the computation only (untie, fold, calibration forwards, PCAs,
rotations), excluding loading the model and data and saving the checkpoint (LaCo Table 4's definition).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ...models.architecture import count_parameters
from ...sparsity import ArchSpec
from .budget import dense_params, sliced_params, width_for_slicing, width_for_target
from .settings import SliceSettings
from .slicing import rotate_and_slice, sliced_record


@dataclass
class SliceResult:
    width: int  # d', the embedding dimension after slicing
    hidden_size: int  # d
    slicing: float  # achieved 1 − d'/d
    lm_head_input: int
    params_dense: int  # the project's dense count (a tied embedding once)
    params_sliced: int  # counted on the sliced model (== the budget formula, checked)
    param_sparsity: float  # 1 − params_sliced / params_dense
    pruning_seconds: float
    record: dict[str, Any]  # uneven_layers.json
    facts: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Everything but the bulky per-site eigenvalue spectra (for pruning.json)."""
        out = asdict(self)
        out["facts"] = {k: v for k, v in self.facts.items() if k != "eigenvalues"}
        return out


def resolve_width(spec: ArchSpec, settings: SliceSettings) -> int:
    """d' from ``settings.slicing`` (reference rounding) or from ``settings.target`` (budget formula)."""
    if settings.slicing is not None:
        return width_for_slicing(spec.hidden_size, settings.slicing, settings.round_interval)
    return width_for_target(spec, settings.target, settings.round_interval, settings.target_rule,
                            settings.slice_head)


def slice_model(model, windows: torch.Tensor, settings: SliceSettings | dict[str, Any]) -> SliceResult:
    """Apply SliceGPT to ``model`` in place with the calibration token windows ``windows`` (N, T)."""
    if isinstance(settings, dict):
        settings = SliceSettings.from_dict(settings)
    spec = ArchSpec.from_hf_config(model.config)
    width = resolve_width(spec, settings)
    head = width if settings.slice_head else spec.hidden_size
    predicted = sliced_params(spec, width, head)
    start = time.perf_counter()
    facts = rotate_and_slice(model, windows, width, slice_head=settings.slice_head,
                             final_orientation=settings.final_orientation, seed=settings.seed,
                             batch_size=settings.batch_size)
    seconds = time.perf_counter() - start
    counted = count_parameters(model)
    if counted != predicted:
        raise RuntimeError(f"sliced model has {counted} parameters but the budget formula predicts {predicted}: "
                           f"budget.sliced_params does not describe this architecture")
    record = sliced_record(model)
    record["slicegpt"] = settings.to_dict()
    dense = dense_params(spec)
    return SliceResult(width=width, hidden_size=spec.hidden_size, slicing=1.0 - width / spec.hidden_size,
                       lm_head_input=head, params_dense=dense, params_sliced=counted,
                       param_sparsity=1.0 - counted / dense, pruning_seconds=seconds, record=record, facts=facts)
