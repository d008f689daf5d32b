"""Losses: hidden-state KL (CoMe Eq. 6 as assumed), FuseGPT's dim-0 KL, MSE — against hand-computed values."""
import math

import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.distill.losses import batch_dim_kl, hidden_kl, hidden_mse, lm_loss


def test_hidden_kl_hand_computed():
    # token 1: p = softmax([0, ln 3]) = [1/4, 3/4], q = softmax([0, 0]) = [1/2, 1/2]
    # KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.130812...; token 2: identical -> 0; mean over tokens = 0.065406
    teacher = torch.tensor([[[0.0, math.log(3.0)], [1.0, 2.0]]])
    student = torch.tensor([[[0.0, 0.0], [1.0, 2.0]]])
    expected = (0.25 * math.log(0.5) + 0.75 * math.log(1.5)) / 2
    assert float(hidden_kl(teacher, student)) == pytest.approx(expected, abs=1e-7)
    assert float(hidden_kl(teacher, student)) == pytest.approx(0.065406, abs=1e-6)  # the decimal, by hand
    # and an independent implementation: torch.distributions' KL of the per-token categoricals, averaged
    reference = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=teacher),
                                                  torch.distributions.Categorical(logits=student)).mean()
    assert float(hidden_kl(teacher, student)) == pytest.approx(float(reference), abs=1e-7)


def test_hidden_kl_is_forward_kl_over_the_hidden_dim():
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    p, q = t.softmax(-1), s.softmax(-1)
    manual = (p * (p.log() - q.log())).sum(-1).mean()
    assert float(hidden_kl(t, s)) == pytest.approx(float(manual), rel=1e-6)
    assert float(hidden_kl(t, s)) != pytest.approx(float(hidden_kl(s, t)), rel=1e-3)  # direction matters
    assert float(hidden_kl(t, t + 7.0)) == pytest.approx(0.0, abs=1e-6)  # softmax is shift-invariant per token
    with pytest.raises(ValueError):
        hidden_kl(t, s[:, :2])


def test_hidden_kl_temperature_softens_sigma():
    # τ = 2: p = softmax([0, ln 3] / 2) = [1, √3] / (1 + √3), q = [1/2, 1/2]
    teacher = torch.tensor([[[0.0, math.log(3.0)]]])
    student = torch.zeros(1, 1, 2)
    p = torch.tensor([1.0, math.sqrt(3.0)]) / (1 + math.sqrt(3.0))
    expected = float((p * (p.log() - math.log(0.5))).sum())
    assert float(hidden_kl(teacher, student, temperature=2.0)) == pytest.approx(expected, abs=1e-7)
    assert expected < float(hidden_kl(teacher, student))  # softer targets, smaller divergence here
    # a massive dimension makes the plain softmax one-hot: a difference elsewhere is invisible at τ = 1
    big_t = torch.tensor([[[500.0, 1.0, -1.0]]])
    big_s = torch.tensor([[[500.0, -1.0, 1.0]]])
    assert float(hidden_kl(big_t, big_s)) < 1e-30
    assert float(hidden_kl(big_t, big_s, temperature=100.0)) > 1e-6
    with pytest.raises(ValueError, match="temperature must be > 0"):
        hidden_kl(teacher, student, temperature=0.0)


def test_batch_dim_kl_softmaxes_over_the_batch():
    # two sequences, one token, one channel: T = [0, ln 3] -> p = [1/4, 3/4]; S = [0, 0] -> q = [1/2, 1/2]
    # kl_div(log q, p, batchmean) = Σ p (ln p - ln q) / B(=2) = 0.130812 / 2
    t = torch.tensor([0.0, math.log(3.0)]).view(2, 1, 1)
    s = torch.zeros(2, 1, 1)
    assert float(batch_dim_kl(s, t)) == pytest.approx((0.25 * math.log(0.5) + 0.75 * math.log(1.5)) / 2, abs=1e-7)


def test_mse_and_lm_loss():
    assert float(hidden_mse(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))) == pytest.approx(5.0)
    logits = torch.zeros(1, 3, 4)
    ids = torch.tensor([[0, 1, 2]])
    assert float(lm_loss(logits, ids)) == pytest.approx(math.log(4.0))
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(1))
    ids = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(2))
    ref = F.cross_entropy(logits[:, :-1].reshape(-1, 7), ids[:, 1:].reshape(-1))
    assert float(lm_loss(logits, ids)) == pytest.approx(float(ref))
