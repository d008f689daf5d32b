"""FuseGPT's learnable low-rank fusion (docs/methods/fusegpt_mif.md; ``fuse_utils.py``).

When layer f is removed, every projection Linear of the other layers t of its
group (``group_size`` = 8 consecutive layers, [f−4, f+3] clamped to the stack)
becomes a :class:`FuseLinear` whose effective weight and bias are

    W_eff = W_t + B·A + Σ_k (P_k Q_k) ⊙ W_f,k        b_eff = b_t + Σ_k c_k ⊙ b_f,k

W_t (the target's own weight) and W_f,k (the *effective* weights of the layers
fused into it, frozen) are not trained; A ∈ R^{r_L×in}, B ∈ R^{out×r_L} is a
LoRA delta (rank 128 hard-coded in the code) and P_k ∈ R^{out×r}, Q_k ∈ R^{r×in}
a low-rank coefficient matrix applied *elementwise* (Hadamard) to W_f,k
(``--coef-matrix --coef-lora``).  Linears are matched by name (q, k, v, o, gate,
up, down); RMSNorm weights are never fused.

Initialisation (:class:`CoefInit`):

* ``zeros`` — the official one: P = 0, Q kaiming-uniform(a=√5); B = 0, A
  kaiming-uniform(a=√5).  Every product is zero, so fusion without training is an
  exact no-op (W_eff = W_t bit for bit).
* ``kaiming`` — P *and* Q kaiming-uniform(a=√5) (each with its own fan-in):
  CoMe's "randomly initialized low-rank matrix products" (FuseGPT-MI+F without
  post-training).  The exact init CoMe used is not stated; this is our choice.
* ``normal`` — P, Q ~ N(0, std²).

The LoRA B stays zero unless ``lora="kaiming"``; the bias coefficients c_k start
at zero in every mode (only Qwen2 has projection biases, and CoMe ran MI+F on
LLaMA/Mistral/Vicuna/Qwen3, none of which has them).

Biases (``bias_fusion``), which only matter once the coefficients are trained:

* ``sum`` (default) — b_eff = b_t + Σ_k c_k ⊙ b_f,k, one coefficient per fused
  layer, b_f,k the removed layer's *effective* bias, b_t frozen;
* ``released`` — as the released ``FuseLinear`` (``do_fuse`` overwrites
  ``add_bias``): b_eff = b_t + c ⊙ b_f,last with **one** coefficient vector c
  for the whole module and only the *last* fused layer's own bias b_f,last (its
  ``.bias``, not its effective one); b_t is trained with the LoRA factors (it is
  a plain parameter there).  The released pipeline loads every model as
  ``LlamaForCausalLM``, so in practice it never holds biases.

:func:`fuse_group` installs the FuseLinears and deletes the removed layer;
:func:`fold_fused` turns every FuseLinear back into a plain ``nn.Linear``
(W_eff summed in fp32, cast back; the code's ``transform_model_tosave``).  The
post-training work trains the FuseLinear parameters between the two calls
(``trainable_parameters`` lists them by role).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...models import architecture as arch
from ..laco.rdsc import PROJECTIONS

COEF_INITS = ("zeros", "kaiming", "normal")
BIAS_FUSIONS = ("sum", "released")
LORA_INITS = ("zeros", "kaiming")


@dataclass(frozen=True)
class CoefInit:
    """How the coefficient factors P, Q and the LoRA factors B, A start."""

    kind: Literal["zeros", "kaiming", "normal"] = "zeros"
    std: float = 0.02
    lora: Literal["zeros", "kaiming"] = "zeros"

    def __post_init__(self):
        if self.kind not in COEF_INITS:
            raise ValueError(f"coef init {self.kind!r}; allowed: {', '.join(COEF_INITS)}")
        if self.lora not in LORA_INITS:
            raise ValueError(f"lora init {self.lora!r}; allowed: {', '.join(LORA_INITS)}")


def _kaiming(shape: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    t = torch.empty(shape)
    nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=gen)
    return t


class FuseLinear(nn.Module):
    """A projection with weights of removed layers fused into it (formula in the module docstring)."""

    def __init__(self, base: nn.Linear, *, lora_rank: int = 128, init: CoefInit = CoefInit(),
                 generator: torch.Generator | None = None, bias_fusion: str = "sum"):
        super().__init__()
        if bias_fusion not in BIAS_FUSIONS:
            raise ValueError(f"FuseGPT key `bias_fusion`: value {bias_fusion!r} is not allowed; "
                             f"allowed: {', '.join(BIAS_FUSIONS)}")
        self.bias_fusion = bias_fusion
        gen = generator or torch.Generator().manual_seed(0)
        w = base.weight
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = nn.Parameter(w.detach(), requires_grad=False)
        self.bias = nn.Parameter(base.bias.detach(), requires_grad=False) if base.bias is not None else None
        a = _kaiming((lora_rank, self.in_features), gen)
        b = _kaiming((self.out_features, lora_rank), gen) if init.lora == "kaiming" else torch.zeros(self.out_features, lora_rank)
        self.lora_A = nn.Parameter(a.to(w.device, w.dtype))
        self.lora_B = nn.Parameter(b.to(w.device, w.dtype))
        self.coef_P = nn.ParameterList()
        self.coef_Q = nn.ParameterList()
        self.coef_b = nn.ParameterList()
        self.n_fused = 0
        if bias_fusion == "released" and self.bias is not None:  # one coefficient, the last fused bias
            self.coef_b_last = nn.Parameter(torch.zeros(self.out_features, device=w.device, dtype=w.dtype))
            self.register_buffer("last_fused_bias", None)

    def add_fused(self, w_f: torch.Tensor, b_f: torch.Tensor | None, *, rank: int = 128,
                  init: CoefInit = CoefInit(), generator: torch.Generator | None = None) -> None:
        """Fuse one more (frozen) weight W_f (and bias b_f) with fresh coefficient factors."""
        if tuple(w_f.shape) != (self.out_features, self.in_features):
            raise ValueError(f"fused weight {tuple(w_f.shape)} does not match {(self.out_features, self.in_features)}")
        gen = generator or torch.Generator().manual_seed(0)
        dev, dt = self.weight.device, self.weight.dtype
        if init.kind == "zeros":
            p, q = torch.zeros(self.out_features, rank), _kaiming((rank, self.in_features), gen)
        elif init.kind == "kaiming":
            p, q = _kaiming((self.out_features, rank), gen), _kaiming((rank, self.in_features), gen)
        else:
            p = torch.randn(self.out_features, rank, generator=gen) * init.std
            q = torch.randn(rank, self.in_features, generator=gen) * init.std
        k = self.n_fused
        self.register_buffer(f"fused_weight_{k}", w_f.detach().to(dev, dt))  # shared, frozen
        self.register_buffer(f"fused_bias_{k}", None if b_f is None else b_f.detach().to(dev, dt))
        self.coef_P.append(nn.Parameter(p.to(dev, dt)))
        self.coef_Q.append(nn.Parameter(q.to(dev, dt)))
        if self.bias_fusion == "released":
            if self.bias is not None:
                self.last_fused_bias = None if b_f is None else b_f.detach().to(dev, dt)
        else:
            self.coef_b.append(nn.Parameter(torch.zeros(self.out_features, device=dev, dtype=dt)))
        self.n_fused += 1

    def fused(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return getattr(self, f"fused_weight_{k}"), getattr(self, f"fused_bias_{k}")

    def effective_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """W_t + B·A + Σ_k (P_k Q_k) ⊙ W_f,k (in ``dtype``, default the weight's)."""
        dt = dtype or self.weight.dtype
        w = self.weight.to(dt) + self.lora_B.to(dt) @ self.lora_A.to(dt)
        for k in range(self.n_fused):
            w = w + (self.coef_P[k].to(dt) @ self.coef_Q[k].to(dt)) * self.fused(k)[0].to(dt)
        return w

    def effective_bias(self, dtype: torch.dtype | None = None) -> torch.Tensor | None:
        """b_t + Σ_k c_k ⊙ b_f,k (``released``: b_t + c ⊙ b_f,last); None when the target has no bias."""
        if self.bias is None:
            return None
        dt = dtype or self.bias.dtype
        b = self.bias.to(dt)
        if self.bias_fusion == "released":
            if self.last_fused_bias is not None:
                b = b + self.coef_b_last.to(dt) * self.last_fused_bias.to(dt)
            return b
        for k in range(self.n_fused):
            b_f = self.fused(k)[1]
            if b_f is not None:
                b = b + self.coef_b[k].to(dt) * b_f.to(dt)
        return b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.effective_bias())

    def trainable_parameters(self) -> dict[str, list[nn.Parameter]]:
        """By role, as FuseGPT's optimiser groups them: LoRA (with the norms) and coefficients."""
        if self.bias_fusion == "released" and self.bias is not None:
            return {"lora": [self.lora_A, self.lora_B, self.bias],
                    "coef": [*self.coef_P, *self.coef_Q, self.coef_b_last]}
        return {"lora": [self.lora_A, self.lora_B], "coef": [*self.coef_P, *self.coef_Q, *self.coef_b]}

    def to_linear(self) -> nn.Linear:
        """A plain Linear with the effective weight and bias (summed in fp32, cast back)."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.effective_weight(torch.float32).to(self.weight.dtype))
            if self.bias is not None:
                lin.bias.copy_(self.effective_bias(torch.float32).to(self.bias.dtype))
        return lin


def group_bounds(n_layers: int, removed_idx: int, group_size: int = 8) -> tuple[int, int]:
    """[start, stop) of the fusion group of ``removed_idx``: [f−4, f+3] shifted to lie inside the stack."""
    if not 0 <= removed_idx < n_layers:
        raise ValueError(f"layer {removed_idx} out of range for {n_layers} layers")
    size = min(group_size, n_layers)
    start = removed_idx - group_size // 2
    start = max(0, min(start, n_layers - size))
    return start, start + size


@dataclass
class FusedGroup:
    """Where a fusion happened, in the numbering *after* the removed layer was deleted."""

    removed_idx: int
    start: int                       # first layer of the (7-layer) group
    stop: int                        # one past its last layer
    modules: dict[str, FuseLinear] = field(default_factory=dict)  # "layers.{t}.{proj}" -> FuseLinear


def _set_submodule(layer: nn.Module, path: str, module: nn.Module) -> None:
    parent, attr = path.rsplit(".", 1)
    setattr(layer.get_submodule(parent), attr, module)


@torch.no_grad()
def fuse_group(model, removed_idx: int, *, rank: int = 128, lora_rank: int = 128, init: CoefInit = CoefInit(),
               seed: int = 0, group_size: int = 8, bias_fusion: str = "sum") -> FusedGroup:
    """Fuse layer ``removed_idx`` into the other layers of its group and delete it (in place).

    Projections that are already FuseLinears get one more fused term; the removed
    layer's own projections enter with their effective weights (and, under
    ``bias_fusion="released"``, with their own bias rather than the effective one).
    """
    n = arch.num_layers(model)
    start, stop = group_bounds(n, removed_idx, group_size)
    gen = torch.Generator().manual_seed(int(seed))
    removed = arch.layers(model)[removed_idx]
    sources = {}
    for name in PROJECTIONS:
        src = removed.get_submodule(name)
        if isinstance(src, FuseLinear):
            bias = src.bias if bias_fusion == "released" else src.effective_bias()
            sources[name] = (src.effective_weight().detach(), None if bias is None else bias.detach())
        else:
            sources[name] = (src.weight.detach(), None if src.bias is None else src.bias.detach())
    modules: dict[str, FuseLinear] = {}
    for t in range(start, stop):
        if t == removed_idx:
            continue
        layer = arch.layers(model)[t]
        new_t = t - (t > removed_idx)
        for name in PROJECTIONS:
            lin = layer.get_submodule(name)
            if not isinstance(lin, FuseLinear):
                lin = FuseLinear(lin, lora_rank=lora_rank, init=init, generator=gen, bias_fusion=bias_fusion)
                _set_submodule(layer, name, lin)
            w_f, b_f = sources[name]
            lin.add_fused(w_f, b_f, rank=rank, init=init, generator=gen)
            modules[f"layers.{new_t}.{name}"] = lin
    arch.drop_layers(model, [removed_idx])
    return FusedGroup(removed_idx=removed_idx, start=start, stop=stop - 1, modules=modules)


def fold_fused(model) -> int:
    """Replace every FuseLinear in ``model`` by its plain-Linear equivalent; returns how many."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, FuseLinear)]
    for name, m in found:
        parent, attr = name.rsplit(".", 1)
        setattr(model.get_submodule(parent), attr, m.to_linear())
    return len(found)
