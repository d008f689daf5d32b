"""SliceGPT's sequential rotate-and-slice (SliceGPT paper, sections "A transformation per block" and
"Slicing"; the reference code's per-layer variant, ``rotate_and_slice_sequential``).

1. untie the LM head, fold every RMSNorm scale into the linear layers that read it (:mod:`.norms`);
2. Q_0 = PCA of the embedding output; ``E ← E·Q_0[:, :d']``;
3. for every layer, with the stream arriving in basis Q_in at width k_in:
   q/k/v read it (``W·Q_in[:, :k_in]``); run the attention half and take Q_mid = PCA of
   ``h = x·S + Attn(N(x))`` (the MLP-norm input, still in the original basis because o_proj is not yet
   rotated); o_proj writes and gate/up read basis Q_mid (width k_mid); ``S_attn = Q_in[:, :k_in]ᵀ·Q_mid[:, :k_mid]``;
   run the whole layer and take Q_out = PCA of its output; down_proj writes basis Q_out (width k_out);
   ``S_mlp = Q_mid[:, :k_mid]ᵀ·Q_out[:, :k_out]``; the next layer's inputs are ``out·Q_out[:, :k_out]``;
4. the LM head reads the last basis (``W·Q_out[:, :d_head]``); the final norm becomes weightless.

Every PCA sees the signals of the partly sliced model built so far (errors of earlier slices included),
as in the reference code.  Every width here is d' except the last layer's output and the LM head input,
which stay d unless the head is sliced (reference default: not).
"""

from __future__ import annotations

from typing import Any

import torch

from ...models.architecture import check_supported, decoder, layers
from .layer import SlicedDecoderLayer
from .norms import fold_rmsnorms, residual_norm_like, weightless_norms
from .pca import SecondMoment, pca_basis, random_upper_left
from .rotate import rotate_embedding, rotate_input, rotate_output
from .signals import capture_layer_inputs
from .untie import untie_embeddings


class _Basis:
    """PCA bases, optionally turned by a random rotation inside the kept block."""

    def __init__(self, orientation: str, seed: int):
        self.orientation = orientation
        self.generator = torch.Generator().manual_seed(seed)
        self.eigenvalues: list[list[float]] = []

    def __call__(self, moment: SecondMoment, keep: int) -> torch.Tensor:
        if moment.C is None:
            raise ValueError("no calibration signal reached this residual site")
        values, Q = pca_basis(moment.C)
        self.eigenvalues.append(values.cpu().tolist())
        if self.orientation == "random":
            Q = Q @ random_upper_left(Q.shape[0], keep, self.generator).to(Q.device)
        return Q


@torch.no_grad()
def rotate_and_slice(model, windows: torch.Tensor, width: int, *, slice_head: bool = False,
                     final_orientation: str = "pca", seed: int = 0, batch_size: int = 8) -> dict[str, Any]:
    """Turn ``model`` (in place) into its SliceGPT form with every residual site at ``width``.

    ``width == hidden_size`` only rotates (the function is unchanged up to rounding).  Returns facts about
    the run (eigenvalue spectra per site, calibration tokens).
    """
    check_supported(model)
    d = int(model.config.hidden_size)
    if not 1 <= width <= d:
        raise ValueError(f"SliceGPT width {width} is not allowed; allowed: 1..{d} (the hidden size)")
    dtype = model.get_input_embeddings().weight.dtype
    model.eval()
    untied = untie_embeddings(model)
    fold_rmsnorms(model)
    xs, kwargs = capture_layer_inputs(model, windows, batch_size)
    basis = _Basis(final_orientation, seed)

    moment = SecondMoment(d)
    for x in xs:
        moment.add(x)
    tokens = moment.tokens
    Q = basis(moment, width)
    rotate_embedding(model.get_input_embeddings(), Q, width)
    xs = [(x.to(torch.float64) @ Q[:, :width].to(x.device)).to(dtype) for x in xs]
    k_in = width

    blocks = layers(model)
    n = len(blocks)
    for i in range(n):
        old = blocks[i]
        attn, mlp = old.self_attn, old.mlp
        k_mid = width
        k_out = width if (i < n - 1 or slice_head) else d
        for lin in (attn.q_proj, attn.k_proj, attn.v_proj):
            rotate_input(lin, Q, k_in)
        S_attn = Q[:, :k_in].T.contiguous()  # k_in × d: back to the original basis until Q_mid is known
        layer = SlicedDecoderLayer(attn, mlp, residual_norm_like(old.input_layernorm, d),
                                   residual_norm_like(old.post_attention_layernorm, d),
                                   S_attn.to(dtype), torch.eye(d, dtype=dtype))
        layer.to(old.self_attn.q_proj.weight.device)
        blocks[i] = layer

        moment = SecondMoment(d)
        for x, kw in zip(xs, kwargs):
            moment.add(layer.attention_residual(x, **kw[i]))
        Q_mid = basis(moment, k_mid)
        S_attn = S_attn @ Q_mid[:, :k_mid]
        rotate_output(attn.o_proj, Q_mid, k_mid)
        for lin in (mlp.gate_proj, mlp.up_proj):
            rotate_input(lin, Q_mid, k_mid)
        S_mlp = Q_mid[:, :k_mid].T.contiguous()
        layer.attn_shortcut_Q = torch.nn.Parameter(S_attn.to(dtype).contiguous())
        layer.mlp_shortcut_Q = torch.nn.Parameter(S_mlp.to(dtype))

        moment = SecondMoment(d)
        outs = []
        for x, kw in zip(xs, kwargs):
            out = layer(x, **kw[i])
            moment.add(out)
            outs.append(out)
        Q = basis(moment, k_out)
        layer.mlp_shortcut_Q = torch.nn.Parameter((S_mlp @ Q[:, :k_out]).to(dtype).contiguous())
        rotate_output(mlp.down_proj, Q, k_out)
        xs = [(o.to(torch.float64) @ Q[:, :k_out].to(o.device)).to(dtype) for o in outs]
        k_in = k_out

    rotate_input(model.get_output_embeddings(), Q, k_in)
    weightless_norms(model, d)
    return {"untied_embeddings": untied, "calibration_tokens": tokens, "eigenvalues": basis.eigenvalues}


def sliced_record(model) -> dict[str, Any]:
    """The shape record of a sliced model (``uneven_layers.json`` without the method's notes)."""
    from ...models.uneven import FORMAT

    dec = decoder(model)
    if not all(isinstance(layer, SlicedDecoderLayer) for layer in dec.layers):
        raise ValueError("sliced_record needs a model whose decoder layers are all SlicedDecoderLayer")
    return {
        "format": FORMAT,
        "kind": "sliced",
        "hidden_size": int(model.config.hidden_size),
        "embedding_dim": int(model.get_input_embeddings().weight.shape[1]),
        "lm_head_input": int(model.get_output_embeddings().weight.shape[1]),
        "norm_eps": float(dec.norm.eps),
        "layers": [layer.dims() for layer in dec.layers],
    }

