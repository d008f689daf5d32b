"""Layer-similarity matrices (MKA Figs. 3/5, LaCo Fig. 5a) against hand-computed values and HF hidden states."""
import math

import numpy as np
import pytest
import torch

from layerpuzzle.engine.block_influence import block_influence
from layerpuzzle.engine.hidden_states import collect_hidden_states, pad_right
from layerpuzzle.engine.layer_similarity import (
    adjacent_cosine,
    cosine_matrix,
    euclidean_matrix,
    mahalanobis_matrix,
    merge_comparison,
    model_similarity,
    select_depths,
    similarity_matrix,
)
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import build_random_model

# three "layers", two tokens each, D = 2
A = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
B = torch.tensor([[3.0, 0.0], [0.0, -1.0]])
C = torch.tensor([[1.0, 1.0], [0.0, 2.0]])


def test_cosine_matrix_hand_computed():
    S = cosine_matrix([A, B, C])
    # A,B: token 0 cos 1, token 1 cos -1 -> 0;  A,C: 1/sqrt2 and 1;  B,C: 1/sqrt2 and -1
    r = 1 / math.sqrt(2)
    expected = np.array([[1, 0, (r + 1) / 2], [0, 1, (r - 1) / 2], [(r + 1) / 2, (r - 1) / 2, 1]])
    np.testing.assert_allclose(S, expected, atol=1e-12)
    assert S[0, 2] == pytest.approx(1 - block_influence(A, C))


def test_euclidean_matrix_hand_computed():
    E = euclidean_matrix([A, B, C], token_chunk=1)  # one token per block
    # A,B: |(-2,0)| = 2 and |(0,3)| = 3 -> 2.5;  A,C: 1 and 0 -> 0.5;  B,C: |(2,-1)| = sqrt5 and 3
    expected = np.array([[0, 2.5, 0.5], [2.5, 0, (math.sqrt(5) + 3) / 2], [0.5, (math.sqrt(5) + 3) / 2, 0]])
    np.testing.assert_allclose(E, expected, atol=1e-12)


def test_mahalanobis_matrix_hand_computed():
    # 1-D, 3 tokens: layer 0 = (0, 1, 2) (mean 1, var 1), layer 1 = (2, 4, 6) (mean 4, var 4)
    x = torch.tensor([[0.0], [1.0], [2.0]])
    M = mahalanobis_matrix([x, 2 * x + 2], ridge=0.0)
    assert M[0, 1] == pytest.approx(3 / math.sqrt((1 + 4) / 2)) and M[1, 0] == M[0, 1] and M[0, 0] == 0
    # the ridge adds ridge * mean(diag pooled) = 0.5 * 2.5
    M = mahalanobis_matrix([x, 2 * x + 2], ridge=0.5)
    assert M[0, 1] == pytest.approx(3 / math.sqrt(2.5 * 1.5))


def test_similarity_matrix_dispatch_and_errors():
    np.testing.assert_allclose(similarity_matrix([A, B], "euclidean"), euclidean_matrix([A, B]))
    with pytest.raises(ValueError, match="allowed"):
        similarity_matrix([A, B], "tsne")
    with pytest.raises(ValueError, match="differ in shape"):
        cosine_matrix([A, A[:1]])


def test_adjacent_cosine_is_one_minus_bi():
    vals = adjacent_cosine([A, B, C])
    assert vals == pytest.approx([0.0, (1 / math.sqrt(2) - 1) / 2])
    assert select_depths([A, B, C], "outputs")[0] is B and len(select_depths([A, B, C], "inputs")) == 2


def test_collect_hidden_states_matches_hf_and_padding():
    model, _ = build_random_model("llama", seed=1)
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, 256, (n,), generator=g) for n in (7, 12, 4)]
    states = collect_hidden_states(model, seqs, last_layer_output="final_norm", batch_size=2)
    L = arch.num_layers(model)
    assert len(states) == L + 1 and all(s.shape == (23, 64) for s in states)
    with torch.no_grad():
        ref = [model(s[None], output_hidden_states=True).hidden_states for s in seqs]
    for k in range(L + 1):  # HF hidden_states[L] is after the final norm
        expected = torch.cat([r[k][0] for r in ref])
        torch.testing.assert_close(states[k], expected, atol=2e-5, rtol=1e-4)
    raw_last = collect_hidden_states(model, seqs, depths=[L])[0]
    assert not torch.allclose(raw_last, states[L])
    batch, lengths = pad_right(seqs)
    assert batch.shape == (3, 12) and lengths == [7, 12, 4] and batch[2, 5] == seqs[2][-1]


def test_model_similarity_and_merge_comparison():
    model, _ = build_random_model("qwen2", seed=2)
    ids = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(1))
    mats = model_similarity(model, ids, ("cosine", "euclidean", "mahalanobis"))
    L = arch.num_layers(model)
    for m in mats.values():
        assert m.shape == (L, L) and np.allclose(m, m.T)
    np.testing.assert_allclose(np.diag(mats["cosine"]), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.diag(mats["euclidean"]), 0.0, atol=1e-9)
    states = collect_hidden_states(model, ids)
    assert mats["cosine"][2, 3] == pytest.approx(adjacent_cosine(states)[3])  # outputs h[3], h[4]
    merged, _ = build_random_model("qwen2", seed=2)
    arch.drop_layers(merged, [6, 7])
    both = merge_comparison(model, merged, ids, ("cosine",))
    np.testing.assert_allclose(both["before"]["cosine"], mats["cosine"])
    assert both["after"]["cosine"].shape == (L - 2, L - 2)
    np.testing.assert_allclose(both["after"]["cosine"], mats["cosine"][: L - 2, : L - 2], atol=1e-6)


def test_token_chunks_do_not_change_the_matrices():
    g = torch.Generator().manual_seed(3)
    states = [torch.randn(2, 7, 5, generator=g) for _ in range(4)]  # (windows, tokens, D) is flattened
    for fn in (cosine_matrix, euclidean_matrix, mahalanobis_matrix):
        np.testing.assert_allclose(fn(states, token_chunk=3), fn(states), rtol=1e-10, atol=1e-12)


def test_tsne_layer_embedding_feeds_npib():
    from layerpuzzle.methods.mka.npib import npib_matrix
    from layerpuzzle.methods.mka.tsne import tsne_layer_embedding

    g = torch.Generator().manual_seed(4)
    layers = [[torch.randn(int(n), 6, generator=g) for n in (3, 5, 4, 6, 2, 5, 3, 4)] for _ in range(3)]
    E = [tsne_layer_embedding(states, seed=1) for states in layers]
    assert all(e.shape == (8, 2) and e.min() >= 0 and e.max() < 1 for e in E)
    np.testing.assert_array_equal(E[0], tsne_layer_embedding(layers[0], seed=1))  # seeded
    # ranks: each column is a permutation of 0, 1/8, ..., 7/8
    np.testing.assert_array_equal(np.sort(E[1][:, 0]), np.arange(8) / 8)
    S = npib_matrix(E, n_neighbors=5, k_entropy=50, seed=0)
    assert S.shape == (3, 3) and np.allclose(S, S.T, equal_nan=True)
