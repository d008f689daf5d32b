"""Run a causal LM one decoder layer at a time over a fixed set of token windows.

The runner is layer-major: it holds the residual stream of *all* calibration
windows at one depth (``Hidden`` = a list of per-batch tensors) and pushes it
through one decoder layer at a time.  Memory is that of a few depths, never all
layers' hidden states at once.  Because the input of layer ``l`` can be kept,
methods that change the model from layer ``l`` on (CoMe's progressive merge,
SLEB's candidate removal) re-run only layers ``l..L-1``.

Every call of :meth:`LayerwiseRunner.layer` counts one *layer forward* (one
decoder layer applied to every calibration window); ``layer_forwards`` is the
figure methods record in their provenance.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

from ..models import architecture as arch
from ..models.sources import resolve_device

Hidden = list[torch.Tensor]  # per-batch residual streams, each (B, S, D)


class LayerwiseRunner:
    """Layer-at-a-time forward passes of ``model`` over ``input_ids`` (W windows × S tokens)."""

    def __init__(self, model, input_ids: torch.Tensor, batch_size: int = 4, device: str | torch.device | None = None):
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (windows, seq_len), got shape {tuple(input_ids.shape)}")
        arch.check_supported(model)
        self.model = model
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.input_ids = input_ids
        self.batch_size = int(batch_size)
        self.layer_forwards = 0
        self._ctx: dict[tuple[int, int], dict] = {}

    # ----------------------------------------------------------------- batching
    def batches(self) -> Iterator[torch.Tensor]:
        for i in range(0, self.input_ids.shape[0], self.batch_size):
            yield self.input_ids[i : i + self.batch_size].to(self.device)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _context(self, hidden: torch.Tensor) -> dict:
        """Position embeddings and causal masks for a (B, S, D) batch (cached per shape)."""
        b, s = hidden.shape[:2]
        key = (b, s)
        if key not in self._ctx:
            cfg = self.model.config
            pos = torch.arange(s, device=hidden.device).unsqueeze(0).expand(b, -1)
            kw = dict(config=cfg, inputs_embeds=hidden, attention_mask=None, past_key_values=None, position_ids=pos)
            masks = {"full_attention": create_causal_mask(**kw)}
            if getattr(cfg, "sliding_window", None) is not None:
                masks["sliding_attention"] = create_sliding_window_causal_mask(**kw)
            rope = self.model.model.rotary_emb(hidden, position_ids=pos)
            self._ctx[key] = {"pos": pos, "masks": masks, "rope": rope}
        return self._ctx[key]

    def _mask_for(self, layer_index: int, ctx: dict):
        cfg = self.model.config
        types = getattr(cfg, "layer_types", None)
        if types is not None:
            return ctx["masks"][types[layer_index]]
        if "sliding_attention" in ctx["masks"]:  # Mistral: every layer slides
            return ctx["masks"]["sliding_attention"]
        return ctx["masks"]["full_attention"]

    # ----------------------------------------------------------------- passes
    @torch.no_grad()
    def embed(self) -> Hidden:
        """H^(0): the embedding output of every calibration batch."""
        emb = self.model.model.embed_tokens
        return [emb(ids) for ids in self.batches()]

    def apply_layer(self, layer: nn.Module, hidden: torch.Tensor, layer_index: int) -> torch.Tensor:
        """One decoder layer on one batch (with autograd if enabled by the caller)."""
        ctx = self._context(hidden)
        return layer(
            hidden,
            attention_mask=self._mask_for(layer_index, ctx),
            position_ids=ctx["pos"],
            position_embeddings=ctx["rope"],
            use_cache=False,
        )

    @torch.no_grad()
    def layer(self, index: int, hidden: Hidden, module: nn.Module | None = None) -> Hidden:
        """Output of decoder layer ``index`` (or of ``module`` placed at that index) for all batches."""
        layer = module if module is not None else self.model.model.layers[index]
        self.layer_forwards += 1
        return [self.apply_layer(layer, h, index) for h in hidden]

    @torch.no_grad()
    def run(self, hidden: Hidden, start: int = 0, stop: int | None = None,
            on_layer: Callable[[int, Hidden, Hidden], None] | None = None) -> Hidden:
        """Push ``hidden`` (the input of layer ``start``) through layers ``start..stop-1``."""
        stop = arch.num_layers(self.model) if stop is None else stop
        for i in range(start, stop):
            out = self.layer(i, hidden)
            if on_layer is not None:
                on_layer(i, hidden, out)
            hidden = out
        return hidden

    @torch.no_grad()
    def final_norm(self, hidden: Hidden) -> Hidden:
        norm = arch.final_norm(self.model)
        return [norm(h) for h in hidden]

    @torch.no_grad()
    def window_nll(self, last_hidden: Hidden) -> torch.Tensor:
        """Summed next-token NLL per window from the last layer's (raw) output.

        Matches the SLEB/CoMe ``get_loss`` convention: mean CE over the S-1
        shifted tokens of a window times S; returns a float64 vector (W,).
        """
        out = []
        for h, ids in zip(last_hidden, self.batches()):
            logits = self.model.lm_head(arch.final_norm(self.model)(h)).float()
            ce = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
            ).view(ids.shape[0], -1)
            out.append(ce.mean(dim=1).double() * ids.shape[1])
        return torch.cat(out).cpu()

    @torch.no_grad()
    def released_nll(self, last_hidden: Hidden) -> float:
        """The released ``get_loss`` (SLEB and CoMe-P in the CoMe code), one value per runner batch:

            Σ_batches float(mean CE over the batch's shifted tokens, in the model dtype) · S · B

        summed in fp32.  In bf16 each batch's loss is rounded to bf16 before the sum, so near-equal
        candidates can tie; :meth:`window_nll` computes the CE on fp32 logits instead.
        """
        losses = []
        for h, ids in zip(last_hidden, self.batches()):
            logits = self.model.lm_head(arch.final_norm(self.model)(h))
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
            losses.append(loss.float() * ids.shape[1] * ids.shape[0])
        return torch.stack(losses).sum().item()

    @torch.no_grad()
    def nll(self, hidden: Hidden | None = None, start: int = 0, released: bool = False) -> float:
        """Total calibration NLL of the current model, from the input of layer ``start``
        (``released``: :meth:`released_nll`)."""
        hidden = self.embed() if hidden is None else hidden
        out = self.run(hidden, start)
        return self.released_nll(out) if released else float(self.window_nll(out).sum())


@contextmanager
def capture_inputs(modules: dict[str, nn.Module], reducer: Callable[[str, torch.Tensor], None]):
    """Forward pre-hooks that hand each module's input tensor to ``reducer(name, x)``."""
    handles = [
        m.register_forward_pre_hook(lambda mod, args, name=name: reducer(name, args[0]))
        for name, m in modules.items()
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def clone_hidden(hidden: Hidden) -> Hidden:
    return [h.clone() for h in hidden]


def to_device(hidden: Sequence[torch.Tensor], device) -> Hidden:
    return [h.to(device) for h in hidden]
