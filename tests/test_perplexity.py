"""Perplexity protocol of docs/evaluation.md on the tiny random LLaMA (byte tokenizer: one token per byte + BOS)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from layerpuzzle.data.text_sources import perplexity_text
from layerpuzzle.evaluation.perplexity import PerplexityResult, perplexity, window_tokens
from layerpuzzle.models.random_models import build_random_model

MIRROR = Path("/work/shared/data")
BOS = 256


@pytest.fixture(scope="module")
def llama():
    return build_random_model("llama", seed=0)


def test_window_tokens_cuts_non_overlapping_windows_and_drops_the_remainder(llama):
    _, tok = llama
    text = "".join(chr(ord("a") + i % 26) for i in range(99))  # BOS + 99 bytes = 100 tokens
    w = window_tokens(text, tok, seqlen=30, max_windows=None)
    assert w.dtype == torch.long and w.shape == (3, 30)  # 100 // 30 = 3, 10 tokens dropped
    flat_ids = tok(text)["input_ids"]
    assert flat_ids[0] == BOS and len(flat_ids) == 100
    assert w.reshape(-1).tolist() == flat_ids[:90]
    assert w[1, 0].item() == flat_ids[30] and w[2, -1].item() == flat_ids[89]


def test_window_tokens_max_windows_keeps_the_first(llama):
    _, tok = llama
    text = "x" * 199
    full = window_tokens(text, tok, seqlen=20, max_windows=None)
    two = window_tokens(text, tok, seqlen=20, max_windows=2)
    assert full.shape == (10, 20) and two.shape == (2, 20)
    assert torch.equal(two, full[:2])
    assert window_tokens(text, tok, seqlen=20, max_windows=50).shape == (10, 20)


def test_window_tokens_too_short_text_says_how_many_tokens(llama):
    _, tok = llama
    with pytest.raises(ValueError, match=r"has 6 tokens.*seqlen=8"):
        window_tokens("hello", tok, seqlen=8, max_windows=None)


def test_window_tokens_on_mirror_c4_text(llama):
    _, tok = llama
    text, info = perplexity_text("c4", MIRROR)
    w = window_tokens(text, tok, seqlen=512, max_windows=4)
    assert w.shape == (4, 512) and info["source"] == "mirror"
    assert w[0, 0].item() == BOS and (w[1:, 0] != BOS).all()  # BOS only at the start of the one sequence


def _hand_window_nll(model, window: torch.Tensor) -> float:
    """log-softmax by hand: S · mean_t −log p(x_t | x_<t) over the S−1 shifted tokens."""
    with torch.no_grad():
        logits = model(window[None]).logits[0].double()
    logp = logits[:-1] - torch.logsumexp(logits[:-1], dim=-1, keepdim=True)
    nll_tokens = -logp.gather(1, window[1:, None]).squeeze(1)
    return float(nll_tokens.mean()) * window.shape[0]


def test_perplexity_equals_hand_computation_on_two_windows(llama):
    model, tok = llama
    w = window_tokens("The quick brown fox jumps over the lazy dog. " * 4, tok, seqlen=64, max_windows=2)
    assert w.shape == (2, 64)
    res = perplexity(model, w, batch_size=1, progress=False)
    nll = [_hand_window_nll(model, w[0]), _hand_window_nll(model, w[1])]
    assert isinstance(res, PerplexityResult)
    assert (res.n_windows, res.seqlen, res.n_nonfinite) == (2, 64, 0)
    assert res.nll_sum == pytest.approx(sum(nll), rel=1e-5)
    assert res.ppl == pytest.approx(math.exp(sum(nll) / (2 * 64)), rel=1e-5)
    # equal weights per window: PPL = exp(mean over windows of the mean token CE)
    with torch.no_grad():
        mean_ce = [float(torch.nn.functional.cross_entropy(model(x[None]).logits[0, :-1], x[1:])) for x in w]
    assert res.ppl == pytest.approx(math.exp(sum(mean_ce) / 2), rel=1e-5)
    # a random model over a 259-token vocabulary is near-uniform: PPL within a factor 2 of 259
    assert 259 / 2 < res.ppl < 259 * 2


def test_perplexity_does_not_depend_on_batch_size(llama):
    model, tok = llama
    w = window_tokens("abcdefghij" * 40, tok, seqlen=50, max_windows=5)
    one = perplexity(model, w, batch_size=1, progress=False)
    three = perplexity(model, w, batch_size=3, progress=False)
    assert three.n_windows == 5
    assert three.nll_sum == pytest.approx(one.nll_sum, rel=1e-5)
    assert three.ppl == pytest.approx(one.ppl, rel=1e-5)


def test_nonfinite_window_makes_ppl_nan_and_is_counted():
    model, _ = build_random_model("llama", seed=0)
    poisoned = 7
    with torch.no_grad():
        model.model.embed_tokens.weight[poisoned] = float("nan")
    w = torch.full((3, 16), 5, dtype=torch.long)
    w[1, 4] = poisoned  # only window 1 sees the NaN embedding
    res = perplexity(model, w, batch_size=2, progress=False)
    assert res.n_nonfinite == 1 and res.n_windows == 3
    assert math.isnan(res.ppl)
    clean = perplexity(model, w[[0, 2]], progress=False)
    assert clean.n_nonfinite == 0 and math.isfinite(clean.ppl)


def test_perplexity_rejects_bad_input(llama):
    model, _ = llama
    with pytest.raises(ValueError, match="non-empty"):
        perplexity(model, torch.zeros((0, 8), dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        perplexity(model, torch.zeros((1, 8), dtype=torch.long), batch_size=0, progress=False)
