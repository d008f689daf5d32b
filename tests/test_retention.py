"""Retention ratios, the ρ rule and integer unit budgets of CoMe (docs/methods/come.md)."""

import math

import numpy as np
import pytest

from layerpuzzle.methods.come.retention import distribute_and_round, retention_ratios, rho_threshold


@pytest.mark.parametrize(
    "bi, p, rho, expected",
    [
        ((0.2, 0.6), 1, 0.0, (0.25, 0.75)),
        ((0.2, 0.6), 2, 0.0, (0.1, 0.9)),  # 0.04 / (0.04 + 0.36)
        ((0.1, 0.2, 0.3), 1, 0.0, (1 / 6, 2 / 6, 3 / 6)),
        ((0.5, 0.5), 1, 0.97, (0.97, 0.03)),  # tie: the first index becomes the max
        ((0.1, 0.2, 0.3), 1, 0.8, (0.2 / 3, 0.4 / 3, 0.8)),  # others keep their 1:2 proportion
        ((0.1, 0.9), 1, 0.5, (0.1, 0.9)),  # max already >= rho: unchanged
        ((0.3, 0.1), 1, 0.75, (0.75, 0.25)),  # max exactly rho: unchanged
        ((0.3, 0.1), 1, 0.85, (0.85, 0.15)),
        ((0.0, 0.0), 1, 0.0, (0.5, 0.5)),  # all-zero BI: equal split
        ((0.0, 0.0, 0.0), 3, 0.9, (0.9, 0.05, 0.05)),
        ((0.4, 0.0), 1, 0.0, (1.0, 0.0)),
    ],
)
def test_retention_ratios_hand_computed(bi, p, rho, expected):
    r = retention_ratios(bi, p, rho)
    np.testing.assert_allclose(r, expected, rtol=0, atol=1e-12)
    assert math.isclose(r.sum(), 1.0, abs_tol=1e-12)


def test_p_infinity_puts_all_mass_on_first_argmax():
    np.testing.assert_array_equal(retention_ratios([0.3, 0.5, 0.1], math.inf), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(retention_ratios([0.3, 0.3, 0.1], math.inf), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(retention_ratios([0.3, 0.3, 0.1], math.inf, rho=0.97), [1.0, 0.0, 0.0])


def test_large_p_does_not_underflow_to_nan():
    # naive (0.01/0.03)^2000 / Σ underflows to 0/0; the ratio is (2/1)^-2000 ≈ 0 for the first layer
    r = retention_ratios([0.01, 0.02], 2000)
    assert np.all(np.isfinite(r))
    np.testing.assert_allclose(r, [0.0, 1.0], atol=1e-300)
    np.testing.assert_allclose(retention_ratios([0.2, 0.6], 64), [3.0**-64 / (1 + 3.0**-64), 1 / (1 + 3.0**-64)])


def test_p_zero_is_equal_split():
    np.testing.assert_allclose(retention_ratios([0.1, 0.7, 0.2], 0), [1 / 3, 1 / 3, 1 / 3])


def test_single_layer_window_keeps_everything():
    np.testing.assert_array_equal(retention_ratios([0.3], 1, 0.97), [1.0])


@pytest.mark.parametrize("bad", [dict(bi=[-0.1, 0.5], p=1), dict(bi=[np.nan, 0.5], p=1), dict(bi=[], p=1),
                                 dict(bi=[0.1, 0.5], p=-1), dict(bi=[0.1, 0.5], p=1, rho=1.5)])
def test_retention_ratios_rejects_invalid_input(bad):
    with pytest.raises(ValueError):
        retention_ratios(**bad)


def test_rho_threshold_rules():
    assert rho_threshold(0.97, 2, "paper") == 0.97
    assert rho_threshold(0.97, 5, "paper") == 0.97
    assert rho_threshold(0.97, 2, "released") == pytest.approx(0.97)
    assert rho_threshold(0.97, 3, "released") == pytest.approx(math.sqrt(0.97))
    assert rho_threshold(0.85, 4, "released") == pytest.approx(0.85 ** (1 / 3))
    with pytest.raises(ValueError):
        rho_threshold(0.97, 1, "released")
    with pytest.raises(ValueError):
        rho_threshold(0.97, 2, "other")


@pytest.mark.parametrize(
    "n, ratios, expected",
    [
        (8, [0.03, 0.97], [0, 8]),  # LLaMA-3 / Mistral KV groups at rho 0.97
        (4, [0.15, 0.85], [0, 4]),  # Qwen2.5 KV groups at rho 0.85
        (1536, [0.25, 0.75], [384, 1152]),
        (14336, [0.03, 0.97], [430, 13906]),  # floor(430.08) = 430
        (8, [0.3, 0.3, 0.4], [2, 2, 4]),  # the max-ratio layer absorbs the rounding
        (10, [0.34, 0.33, 0.33], [4, 3, 3]),
        (2, [0.5, 0.5], [1, 1]),  # tie: the first layer is the "max" and gets the remainder
        (3, [0.5, 0.5], [2, 1]),
        (5, [1.0, 0.0], [5, 0]),
        (5, [0.0, 1.0], [0, 5]),
    ],
)
def test_distribute_and_round(n, ratios, expected):
    counts = distribute_and_round(n, ratios)
    assert counts == expected
    assert sum(counts) == n


def test_distribute_and_round_sums_to_n_for_random_ratios():
    rng = np.random.default_rng(0)
    for _ in range(200):
        r = retention_ratios(rng.random(rng.integers(2, 6)), 1, 0.0)
        n = int(rng.integers(1, 5000))
        counts = distribute_and_round(n, r)
        top = int(np.argmax(r))
        assert sum(counts) == n and min(counts) >= 0
        assert all(c == math.floor(n * r[t]) for t, c in enumerate(counts) if t != top)
