"""LaCo Table 14 measures: CKA invariances and hand values, next-token KL, dense-vs-pruned distances."""
import copy
import math

import numpy as np
import pytest
import torch

from layerpuzzle.engine.cka import gram_cka, linear_cka, rbf_cka, rbf_gram
from layerpuzzle.engine.distribution_distance import distribution_distances, next_token_kl
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import build_random_model


def _data(n=40, p=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, generator=g, dtype=torch.float64)
    Y = X @ torch.randn(p, 5, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, 5, generator=g,
                                                                                      dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    return X, Y, Q


def test_cka_self_is_one():
    X, Y, _ = _data()
    assert linear_cka(X, X) == pytest.approx(1.0)
    assert rbf_cka(Y, Y) == pytest.approx(1.0)


@pytest.mark.parametrize("cka", [linear_cka, rbf_cka])
def test_cka_orthogonal_and_isotropic_scaling_invariance(cka):
    X, Y, Q = _data()
    base = cka(X, Y)
    assert 0 < base < 1
    assert cka(X, 3.7 * Y @ Q) == pytest.approx(base, rel=1e-9)
    assert cka(X, Y + 5.0) == pytest.approx(base, rel=1e-9)  # translation (centering / distances)
    assert cka(Y, X) == pytest.approx(base, rel=1e-12)


def test_linear_cka_hand_computed_and_not_invariant_to_anisotropic_scaling():
    # 1-D representations: linear CKA = squared Pearson correlation
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    y = torch.tensor([[1.0], [0.0], [3.0], [2.0]])
    r = np.corrcoef(x[:, 0].numpy(), y[:, 0].numpy())[0, 1]
    assert linear_cka(x, y) == pytest.approx(r ** 2)  # r = 0.6 -> 0.36
    assert linear_cka(x, y) == pytest.approx(0.36)
    X, Y, _ = _data()
    assert linear_cka(X, Y * torch.tensor([1, 10, 1, 1, 1.0])) != pytest.approx(linear_cka(X, Y), rel=1e-3)
    assert linear_cka(X, Y) == pytest.approx(gram_cka(X @ X.T, Y @ Y.T))  # feature-space = Gram-space


def test_rbf_gram_median_bandwidth_hand_computed():
    # points 0, 1, 3 on a line: squared distances {0,0,0, 1,1, 9,9, 4,4}; median (of 9 entries) = 1
    x = torch.tensor([[0.0], [1.0], [3.0]])
    K = rbf_gram(x)
    assert K[0, 1] == pytest.approx(math.exp(-1 / 2)) and K[0, 2] == pytest.approx(math.exp(-9 / 2))
    assert K[1, 2] == pytest.approx(math.exp(-4 / 2)) and K[1, 1] == 1
    assert rbf_gram(x, threshold=2.0)[0, 2] == pytest.approx(math.exp(-9 / 8))


def test_kl_hand_computed_two_token_vocabulary():
    # p = (1/2, 1/2), q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
    p = torch.tensor([[0.0, 0.0]])
    q = torch.tensor([[math.log(3.0), 0.0]])
    assert next_token_kl(p, q) == pytest.approx(0.5 * math.log(4 / 3))
    # two positions: the second identical -> the token mean halves it
    assert next_token_kl(torch.cat([p, p]), torch.cat([q, p])) == pytest.approx(0.25 * math.log(4 / 3))
    assert next_token_kl(q, q) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        next_token_kl(p, q[:, :1])


def test_distribution_distances_identical_and_pruned():
    dense, _ = build_random_model("llama", seed=4)
    ids = [torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(n)) for n in (9, 14)]
    same = distribution_distances(dense, copy.deepcopy(dense), ids)
    assert same["kl_divergence"] == pytest.approx(0.0, abs=1e-12)
    assert same["linear_cka"] == pytest.approx(1.0) and same["kernel_cka"] == pytest.approx(1.0)
    assert same["n_tokens"] == 23 == same["n_cka_tokens"]
    pruned = copy.deepcopy(dense)
    arch.drop_layers(pruned, [3, 4])
    d = distribution_distances(dense, pruned, ids, cka_max_tokens=10)
    assert d["kl_divergence"] > 0 and 0 < d["linear_cka"] < 1 and 0 < d["kernel_cka"] < 1
    assert d["n_cka_tokens"] == 10
