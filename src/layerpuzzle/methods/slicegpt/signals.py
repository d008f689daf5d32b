"""Calibration signals at the first residual site, and the keyword arguments every decoder layer receives.

The model's own forward builds the rotary embeddings and the (per-layer-type) attention masks; to reuse them
while the layers are rewritten one by one, the layers are swapped for pass-through recorders for one forward
per batch: each recorder stores the kwargs it is called with, the first also the embedding output (the
signal X_0 of the first residual site), and a pre-hook on the final norm stops the forward there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...models.architecture import decoder, final_norm


class _Stop(Exception):
    pass


class _Recorder(nn.Module):
    def __init__(self, store: list[dict[str, Any]], first: list[torch.Tensor] | None):
        super().__init__()
        self.store, self.first = store, first

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        self.store.append(kwargs)
        if self.first is not None:
            self.first.append(hidden_states.detach())
        return hidden_states


@torch.no_grad()
def capture_layer_inputs(model, windows: torch.Tensor, batch_size: int) -> tuple[list[torch.Tensor], list[list[dict]]]:
    """``(X_0 per batch, kwargs[batch][layer])`` for the (N, T) token windows, ``batch_size`` windows a batch."""
    if windows.dim() != 2 or windows.numel() == 0:
        raise ValueError(f"calibration windows must be a non-empty (N, T) token tensor, got shape {tuple(windows.shape)}")
    dec = decoder(model)
    original = dec.layers
    device = model.get_input_embeddings().weight.device
    inputs: list[torch.Tensor] = []
    kwargs: list[list[dict]] = []
    hook = final_norm(model).register_forward_pre_hook(lambda m, a: (_ for _ in ()).throw(_Stop()))
    try:
        for start in range(0, windows.shape[0], batch_size):
            per_layer: list[list[dict]] = [[] for _ in original]
            first: list[torch.Tensor] = []
            dec.layers = nn.ModuleList([_Recorder(per_layer[i], first if i == 0 else None)
                                        for i in range(len(original))])
            try:
                model(input_ids=windows[start:start + batch_size].to(device), use_cache=False)
            except _Stop:
                pass
            inputs.append(first[0])
            kwargs.append([store[0] for store in per_layer])
    finally:
        dec.layers = original
        hook.remove()
    return inputs, kwargs
