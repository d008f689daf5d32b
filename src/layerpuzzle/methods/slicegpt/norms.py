"""RMSNorm folding (SliceGPT paper, section "Computational invariance") and the weightless residual RMSNorm.

An RMSNorm followed by a linear map is ``W·(g ⊙ x/rms(x)) = (W·diag(g))·(x/rms(x))``, so the scale ``g`` moves
into the columns of every linear layer that reads the norm's output (the paper absorbs ``diag(α)`` into
the next ``W_in``): q/k/v after ``input_layernorm``, gate/up after ``post_attention_layernorm``, the LM head
after the final norm.  What remains, ``x/rms(x)``, commutes with any orthogonal ``Q`` because
``‖x·Q‖ = ‖x‖``: ``RMSNorm(X·Q)·Qᵀ = RMSNorm(X)``, the invariance that lets the residual stream be rotated.
Qwen3's per-head q_norm/k_norm act inside attention, not on the residual stream, and stay as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from ...models.architecture import decoder, final_norm, layers


class ResidualRMSNorm(nn.Module):
    """Weightless RMSNorm ``x / sqrt(Σ_i x_i² / d + eps)`` with ``d`` the *unsliced* hidden size.

    On a sliced stream (d' < d) the sum runs over the kept d' coordinates but is still divided by d, as the
    reference code's ``RMSN(mean_dim=hidden_size)`` does: the dropped coordinates carry little energy, so
    this approximates the unsliced norm.  Computed in fp32 like the HF RMSNorms.
    """

    def __init__(self, mean_dim: int, eps: float):
        super().__init__()
        self.mean_dim = int(mean_dim)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x32 = x.to(torch.float32)
        variance = x32.pow(2).sum(-1, keepdim=True) / self.mean_dim
        return (x32 * torch.rsqrt(variance + self.eps)).to(dtype)

    def extra_repr(self) -> str:
        return f"mean_dim={self.mean_dim}, eps={self.eps}"


def _norm_eps(norm: nn.Module) -> float:
    for name in ("variance_epsilon", "eps"):
        if hasattr(norm, name):
            return float(getattr(norm, name))
    raise ValueError(f"cannot read the epsilon of {type(norm).__name__}")


def _fold_into(norm: nn.Module, linears: list[nn.Linear]) -> None:
    g = norm.weight.data.to(torch.float64)
    for lin in linears:
        lin.weight.data = (lin.weight.data.to(torch.float64) * g[None, :]).to(lin.weight.dtype)
    norm.weight.data.fill_(1.0)


@torch.no_grad()
def fold_rmsnorms(model) -> None:
    """Fold every residual-stream RMSNorm scale into the linear layers that read it; the norm weights become 1.

    The model's function is unchanged (up to rounding).  The LM head must not be tied to the embedding
    (see :func:`.untie.untie_embeddings`), or the fold would scale the embedding too.
    """
    if model.get_output_embeddings().weight is model.get_input_embeddings().weight:
        raise ValueError("fold_rmsnorms needs an untied lm_head (call untie_embeddings first)")
    for layer in layers(model):
        attn, mlp = layer.self_attn, layer.mlp
        _fold_into(layer.input_layernorm, [attn.q_proj, attn.k_proj, attn.v_proj])
        _fold_into(layer.post_attention_layernorm, [mlp.gate_proj, mlp.up_proj])
    _fold_into(final_norm(model), [model.get_output_embeddings()])


def weightless_norms(model, hidden_size: int) -> None:
    """Replace the final norm by a :class:`ResidualRMSNorm` over ``hidden_size`` (after folding)."""
    dec = decoder(model)
    dec.norm = ResidualRMSNorm(hidden_size, _norm_eps(dec.norm))


def residual_norm_like(norm: nn.Module, hidden_size: int) -> ResidualRMSNorm:
    """A weightless replacement for a (folded) HF RMSNorm, with the same epsilon."""
    return ResidualRMSNorm(hidden_size, _norm_eps(norm))
