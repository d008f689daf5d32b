"""Channel sensitivity S^(l) of CoMe (paper Eq. 4; docs/layer_scores.md).

An output channel's importance is its mean activation magnitude times the L1
norm of the output-projection column it feeds:

    FFN channel j:   S_j = E_t|a_tj| · ‖W_down[:, j]‖₁        a = act(gate(x)) ⊙ up(x)
    KV group g:      S_g = mean_{k ∈ group g} E_t|o_tk| · ‖W_o[:, k]‖₁

``o`` is the concatenated per-head attention output (the input of ``o_proj``,
``n_q·d_h`` channels).  Query head ``h`` belongs to KV group ``h // n_rep``
(HF ``repeat_kv``), so group ``g`` owns the ``n_rep·d_h`` contiguous channels
``[g·n_rep·d_h, (g+1)·n_rep·d_h)``.  Because the mean over tokens and channels
of ``|o|·w`` equals the mean over channels of ``E_t|o|·w``, the per-channel
mean ``|activation|`` (forward-pre-hook inputs of ``mlp.down_proj`` and
``self_attn.o_proj``) is all that has to be gathered.

Everything is computed in float32 on the device of the weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..models.architecture import head_geometry


def _column_l1(weight: Tensor) -> Tensor:
    """‖W[:, k]‖₁ for every input column k of a (out, in) linear weight."""
    return weight.detach().float().abs().sum(dim=0)


def ffn_channel_sensitivity(act_abs_mean: Tensor, w_down: Tensor) -> Tensor:
    """S_j = E_t|a_tj| · ‖W_down[:, j]‖₁ for the D_int intermediate channels.

    ``act_abs_mean``: (D_int,) mean |input of down_proj|; ``w_down``: (D, D_int).
    """
    col = _column_l1(w_down)
    if act_abs_mean.shape != col.shape:
        raise ValueError(f"act_abs_mean has shape {tuple(act_abs_mean.shape)}, down_proj has {col.shape[0]} inputs")
    return act_abs_mean.detach().to(col.device, torch.float32) * col


def kv_group_sensitivity(act_abs_mean: Tensor, w_o: Tensor, n_kv: int, n_rep: int, head_dim: int) -> Tensor:
    """S_g = mean over the n_rep·d_h channels k of KV group g of E_t|o_tk| · ‖W_o[:, k]‖₁.

    ``act_abs_mean``: (n_q·d_h,) mean |input of o_proj|; ``w_o``: (D, n_q·d_h).
    Returns (n_kv,).
    """
    col = _column_l1(w_o)
    width = n_kv * n_rep * head_dim
    if act_abs_mean.shape != (width,) or col.shape != (width,):
        raise ValueError(
            f"expected {width} = n_kv·n_rep·head_dim o_proj input channels, got activations "
            f"{tuple(act_abs_mean.shape)} and o_proj weight {tuple(w_o.shape)}"
        )
    per_channel = act_abs_mean.detach().to(col.device, torch.float32) * col
    return per_channel.view(n_kv, n_rep * head_dim).mean(dim=1)


def layer_sensitivity(layer: nn.Module, down_proj_act_abs_mean: Tensor, o_proj_act_abs_mean: Tensor,
                      config) -> tuple[Tensor, Tensor]:
    """(FFN channel sensitivity (D_int,), KV-group sensitivity (n_kv,)) of one decoder layer."""
    g = head_geometry(config)
    ffn = ffn_channel_sensitivity(down_proj_act_abs_mean, layer.mlp.down_proj.weight)
    kv = kv_group_sensitivity(o_proj_act_abs_mean, layer.self_attn.o_proj.weight, g["n_kv"], g["n_rep"], g["head_dim"])
    return ffn, kv
