"""The sliced decoder layer: a pre-norm block whose two residual connections carry shortcut matrices
(SliceGPT paper, section "A transformation per block": the skip connection gets ``Q_ℓᵀ·Q_ℓ+1``).

    h   = x·S_attn + Attn(N(x))          S_attn = Q_inᵀ[:k_in]  · Q_mid[:, :k_mid]   (k_in × k_mid)
    out = h·S_mlp  + MLP(N(h))           S_mlp  = Q_midᵀ[:k_mid] · Q_out[:, :k_out]   (k_mid × k_out)

with N the weightless :class:`~.norms.ResidualRMSNorm` over the unsliced width.  The attention and MLP modules
are the model's own (q/k/v/gate/up read the sliced stream, o/down write it), so rotary embeddings, masks,
GQA, Qwen3's q/k norms and the KV cache work as in the dense layer.  The layer takes the keyword arguments
transformers 5 passes to decoder layers (``attention_mask``, ``position_embeddings``, ``position_ids``,
``cache``, ``use_cache``, …) and hands them to the attention, and returns a tensor like the HF layers do.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer


class SlicedDecoderLayer(GradientCheckpointingLayer):
    """Wraps a (folded) HF decoder layer's ``self_attn`` and ``mlp`` with weightless norms and shortcuts."""

    def __init__(self, self_attn: nn.Module, mlp: nn.Module, input_layernorm: nn.Module,
                 post_attention_layernorm: nn.Module, attn_shortcut_Q: torch.Tensor, mlp_shortcut_Q: torch.Tensor):
        super().__init__()
        self.self_attn = self_attn
        self.mlp = mlp
        self.input_layernorm = input_layernorm
        self.post_attention_layernorm = post_attention_layernorm
        self.attn_shortcut_Q = nn.Parameter(attn_shortcut_Q)
        self.mlp_shortcut_Q = nn.Parameter(mlp_shortcut_Q)

    def attention_residual(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        """``h = x·S_attn + Attn(N(x))`` — the signal the MLP's norm reads."""
        attn_out, _ = self.self_attn(hidden_states=self.input_layernorm(hidden_states), **kwargs)
        return hidden_states @ self.attn_shortcut_Q + attn_out

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        h = self.attention_residual(hidden_states, **kwargs)
        return h @ self.mlp_shortcut_Q + self.mlp(self.post_attention_layernorm(h))

    def dims(self) -> dict[str, int]:
        """The residual widths this layer reads and writes: attention input, MLP input, output."""
        return {"attn_input": int(self.attn_shortcut_Q.shape[0]), "mlp_input": int(self.mlp_shortcut_Q.shape[0]),
                "output": int(self.mlp_shortcut_Q.shape[1])}
