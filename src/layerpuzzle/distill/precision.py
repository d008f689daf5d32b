"""fp32 master weights for the trained layers of a lower-precision model.

A model loaded in bf16 on a GPU cannot be trained in place at CoMe's learning rates: an AdamW update
of 1e-5 on a weight of 0.02 is below bf16's resolution (0.02 + 1e-5 == 0.02 in bf16), so most of the
update is lost. :func:`fp32_trainable` keeps the trained layers in fp32 for the duration of training:
each such layer casts its floating inputs to fp32 and its output back to the model's dtype, so the
frozen bf16 layers around it are untouched. On leaving, the layers are cast back to the model's dtype
(one rounding of the trained weights, as when saving any fp32-trained model in bf16). A model that
is already fp32 (every CPU run) is left exactly as it is.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from torch import nn


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype) for v in value)
    if isinstance(value, list):
        return [_cast(v, dtype) for v in value]
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


@contextmanager
def fp32_trainable(model: nn.Module, layers: Sequence[nn.Module]) -> Iterator[None]:
    """Within the block, ``layers`` hold fp32 weights and compute in fp32; the rest of ``model`` is unchanged."""
    dtype = next(model.parameters()).dtype
    if dtype == torch.float32 or not layers:
        yield
        return
    handles = []
    for layer in layers:
        layer.float()  # in place: the nn.Parameter objects (and any optimiser holding them) stay the same
        handles.append(layer.register_forward_pre_hook(
            lambda _m, args, kwargs: (_cast(args, torch.float32), _cast(kwargs, torch.float32)), with_kwargs=True))
        handles.append(layer.register_forward_hook(lambda _m, _args, out: _cast(out, dtype)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for layer in layers:
            layer.to(dtype)
