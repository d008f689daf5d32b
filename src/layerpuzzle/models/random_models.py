"""Tiny randomly initialised models of the four architectures CoMe covers.

Built deterministically in code for tests and end-to-end runs of the DAG:
LLaMA (GQA), Mistral (sliding-window config), Qwen2 (q/k/v biases) and Qwen3
(per-head q_norm/k_norm, tied embeddings).
"""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    MistralConfig,
    PretrainedConfig,
    Qwen2Config,
    Qwen3Config,
)

from .byte_tokenizer import build_byte_tokenizer

ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3")

COMMON_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=8,
    num_attention_heads=4,
    num_key_value_heads=2,  # GQA, n_rep = 2
    head_dim=16,
    max_position_embeddings=1024,
    rms_norm_eps=1e-6,
    initializer_range=0.08,
)


def random_config(arch: str, vocab_size: int = 259, **overrides) -> PretrainedConfig:
    """The tiny config of ``arch``; ``overrides`` replace any field."""
    kw = dict(COMMON_CONFIG, vocab_size=vocab_size, bos_token_id=256, eos_token_id=257, pad_token_id=258)
    kw.update(overrides)
    if arch == "llama":
        return LlamaConfig(tie_word_embeddings=False, **kw)
    if arch == "mistral":
        return MistralConfig(tie_word_embeddings=False, sliding_window=kw["max_position_embeddings"], **kw)
    if arch == "qwen2":
        return Qwen2Config(tie_word_embeddings=False, use_sliding_window=False, **kw)
    if arch == "qwen3":
        return Qwen3Config(tie_word_embeddings=True, use_sliding_window=False, **kw)
    raise ValueError(f"unknown random architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}")


def build_random_model(arch: str, seed: int = 0, **overrides):
    """Return ``(model, tokenizer)``: a fp32 random model and the byte tokenizer.

    Norm weights are drawn around 1 (not all ones) so that averaging norms in a
    merge is observable; everything depends only on ``seed``.
    """
    cfg = random_config(arch, **overrides)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    model.eval()
    return model, build_byte_tokenizer()
